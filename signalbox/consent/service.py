"""The one write path for consent (`record`) and the state every send checks (`states`).

State is never cached: a send reads the ledger in the transaction that decides it, so a STOP
stored a second ago already binds. Consent follows the person: rows of every node of a merged
tree count, the newest deciding.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from signalbox.consent.models import ConsentChange
from signalbox.consent.schemas import CHANNELS, PURPOSES, STATUSES, UNKNOWN, ConsentRecord, ConsentState
from signalbox.core.errors import InvalidInputError

_CHUNK = 2000
# identify traits (Braze's convention): these values grant, `unsubscribed` revokes.
_TRAIT_CHANNELS = {"email_subscribe": "email", "sms_subscribe": "sms"}
_GRANTS = ("opted_in", "subscribed")


def record(
    session: Session,
    workspace_id: str,
    profile_id: str,
    channel: str,
    status: str,
    *,
    source: str,
    at: datetime,
    now: datetime,
    purpose: str = "all",
    evidence: dict[str, Any] | None = None,
) -> None:
    if channel not in CHANNELS:
        raise InvalidInputError(f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
    if status not in STATUSES:
        raise InvalidInputError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    if purpose not in PURPOSES:
        raise InvalidInputError(f"purpose {purpose!r} is not one of {', '.join(PURPOSES)}")
    session.add(
        ConsentChange(
            workspace_id=workspace_id,
            profile_id=profile_id,
            channel=channel,
            purpose=purpose,
            status=status,
            source=source[:32],
            evidence=evidence or {},
            at=at,
            created_at=now,
        )
    )


def from_traits(traits: dict[str, Any]) -> list[tuple[str, str]]:
    """(channel, status) changes an identify's traits ask for."""
    out: list[tuple[str, str]] = []
    for key, channel in _TRAIT_CHANNELS.items():
        value = traits.get(key)
        if isinstance(value, str):
            value = value.strip().lower()
            if value in _GRANTS:
                out.append((channel, "granted"))
            elif value == "unsubscribed":
                out.append((channel, "revoked"))
    return out


def states(session: Session, workspace_id: str, trees: dict[str, Sequence[str]]) -> dict[str, dict[str, ConsentState]]:
    """Per root (given its tree's nodes): each channel's current state."""
    owner = {node: root for root, nodes in trees.items() for node in nodes}
    out: dict[str, dict[str, ConsentState]] = {root: dict.fromkeys(CHANNELS, UNKNOWN) for root in trees}
    newest: dict[tuple[str, str], tuple[datetime, int]] = {}
    nodes = list(owner)
    for start in range(0, len(nodes), _CHUNK):
        rows = session.execute(
            select(
                ConsentChange.profile_id,
                ConsentChange.channel,
                ConsentChange.status,
                ConsentChange.purpose,
                ConsentChange.source,
                ConsentChange.at,
                ConsentChange.id,
            ).where(
                ConsentChange.workspace_id == workspace_id, ConsentChange.profile_id.in_(nodes[start : start + _CHUNK])
            )
        )
        for node, channel, status, purpose, source, at, row_id in rows:
            root = owner[node]
            order = (at, row_id)
            if newest.get((root, channel), (datetime.min.replace(tzinfo=at.tzinfo), -1)) < order:
                newest[(root, channel)] = order
                out[root][channel] = ConsentState(status, purpose, source, at)
    return out


def history(session: Session, workspace_id: str, nodes: Sequence[str]) -> list[ConsentRecord]:
    rows = session.scalars(
        select(ConsentChange)
        .where(ConsentChange.workspace_id == workspace_id, ConsentChange.profile_id.in_(list(nodes)))
        .order_by(ConsentChange.at.desc(), ConsentChange.id.desc())
    )
    return [ConsentRecord(r.id, r.channel, r.purpose, r.status, r.source, r.evidence, r.at) for r in rows]
