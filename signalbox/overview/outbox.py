"""The Outbox page's read model: every provider call (in sandbox mode, every message that
would have gone out) as its recipient would see it, newest first, a page at a time.

A scoped viewer sees a message only through its send-ledger row, whose person must call one
of their locations home; a message with no ledger row (nobody to place) is not theirs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import formataddr
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from signalbox.channels.models import OutboxMessage, Send
from signalbox.connectors import smtp
from signalbox.core.db import Database
from signalbox.overview.playbooks import visible_nodes
from signalbox.workspaces import service as workspaces

PAGE_SIZE = 20
CHANNELS = ("email", "sms")

# The GSM 03.38 default alphabet: a message only of these is sent 7-bit (160 a segment);
# any other character makes the whole message UCS-2 (70 a segment).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")  # two septets each (escape + character)


def sms_segments(body: str) -> tuple[int, str]:
    """How many segments a carrier bills for this text, and its encoding (gsm-7 | ucs-2).
    A multi-part message loses room in each part to the concatenation header."""
    if all(c in GSM_BASIC or c in GSM_EXTENDED for c in body):
        length = sum(2 if c in GSM_EXTENDED else 1 for c in body)
        single, part, encoding = 160, 153, "gsm-7"
    else:
        # UCS-2 counts UTF-16 code units: an emoji outside the BMP takes two.
        length = len(body.encode("utf-16-le")) // 2
        single, part, encoding = 70, 67, "ucs-2"
    if length <= single:
        return (1 if length else 0), encoding
    return math.ceil(length / part), encoding


def looks_like_html(body: str) -> bool:
    head = body.lstrip()[:15].lower()
    return head.startswith(("<!doctype html", "<html"))


_HREF = re.compile(r"""\bhref\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
PREVIEW_CSP = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    channel: str
    to: str
    subject: str | None
    body: str
    created_at: datetime
    at_local: str
    provider: str
    status: str | None
    error: str | None
    user_id: str | None
    playbook: str | None
    step: str | None
    sender: str | None
    html_part: str | None = None  # the e-mail's HTML part as sent, when it had one

    @property
    def segments(self) -> tuple[int, str] | None:
        return sms_segments(self.body) if self.channel == "sms" else None

    @property
    def page(self) -> str | None:
        """What a mail client would show (the HTML part, or a body that is itself a document),
        as a preview: its links lead nowhere, so looking never records a click on the
        customer's profile, and it loads nothing from elsewhere."""
        if self.channel != "email":
            return None
        shown = self.html_part or (self.body if looks_like_html(self.body) else None)
        return None if shown is None else PREVIEW_CSP + _HREF.sub('href="#"', shown)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "channel": self.channel,
            "from": self.sender,
            "to": self.to,
            "subject": self.subject,
            "body": self.body,
            "html": self.html_part,
            "created_at": self.created_at.isoformat(),
            "provider": self.provider,
            "status": self.status,
            "error": self.error,
            "user_id": self.user_id,
            "playbook": self.playbook,
            "step": self.step,
        }
        if self.segments is not None:
            out["segments"], out["encoding"] = self.segments
        return out


@dataclass(frozen=True, slots=True)
class OutboxPage:
    messages: list[OutboxEntry]
    channel: str | None
    next_before: int | None  # the cursor of the next (older) page; None: this is the last

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "messages": [m.to_dict() for m in self.messages],
            "next_before": self.next_before,
        }


def _sender(db: Database, workspace_id: str, workspace_name: str) -> str:
    """The From a recipient would read: the connected SMTP sender, else the workspace's name."""
    doc = workspaces.get_setting(db, workspace_id, smtp.SECTION) or {}
    address = doc.get("from")
    if not isinstance(address, str) or not address:
        return f"{workspace_name} (no SMTP sender connected)"
    name = doc.get("from_name")
    return formataddr((name, address)) if isinstance(name, str) and name else address


def outbox_page(
    db: Database,
    workspace_id: str,
    locations: tuple[str, ...] | None,
    *,
    channel: str | None = None,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> OutboxPage:
    """Newest first; `before` is the id cursor of the previous page's last message (stable
    while new messages arrive, unlike an offset)."""
    ws = workspaces.get_workspace(db, workspace_id)
    zone = ZoneInfo(ws.timezone)
    sender = _sender(db, workspace_id, ws.name)
    ledger = (Send.workspace_id == OutboxMessage.workspace_id) & (Send.idempotency_key == OutboxMessage.idempotency_key)
    stmt = select(OutboxMessage, Send.user_id, Send.playbook, Send.step_id).where(
        OutboxMessage.workspace_id == workspace_id
    )
    if locations is None:
        stmt = stmt.outerjoin(Send, ledger)
    else:
        stmt = stmt.join(Send, ledger).where(
            Send.profile_id.in_(visible_nodes(workspace_id, locations).scalar_subquery())
        )
    if channel:
        stmt = stmt.where(OutboxMessage.channel == channel)
    if before is not None:
        stmt = stmt.where(OutboxMessage.id < before)
    with db.session() as session:
        rows = session.execute(stmt.order_by(OutboxMessage.id.desc()).limit(limit + 1)).all()
    entries = [
        OutboxEntry(
            m.id,
            m.channel,
            m.to,
            m.subject,
            m.body,
            m.created_at,
            m.created_at.astimezone(zone).strftime("%d %b %Y %H:%M"),
            m.provider,
            m.status,
            m.error,
            user_id,
            playbook,
            step,
            sender if m.channel == "email" else None,
            m.html,
        )
        for m, user_id, playbook, step in rows[:limit]
    ]
    more = len(rows) > limit
    return OutboxPage(entries, channel, entries[-1].id if more and entries else None)
