"""Clicks on tracked links: `/l/{token}` finds the link and the send it went out in, records
the click on the person's profile as `email_clicked` or `sms_link_clicked` (attributed to the
playbook and step), and sends the browser on.

A click is an event through the ingestion pipeline like any other, so segments, goals and
the timeline see it. Its message id is the token and the minute: a double click, or a browser
retrying the redirect, counts once; a click the next day counts again. A HEAD request is
answered without counting: link checkers and previews use it, people do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from signalbox.channels import links
from signalbox.channels import service as channels
from signalbox.core.clock import Clock
from signalbox.core.db import Database
from signalbox.core.errors import NotFoundError
from signalbox.core.logging import get_logger
from signalbox.ingestion.service import BatchInput, Pipeline
from signalbox.workspaces import service as workspaces

log = get_logger("connectors.links")
SOURCE = "link"
EVENT_BY_CHANNEL = {"email": "email_clicked", "sms": "sms_link_clicked"}


@dataclass(frozen=True)
class Followed:
    url: str
    recorded: bool  # a click event stored now (False: a HEAD, or the same minute's click again)


class LinkClicks:
    def __init__(self, db: Database, pipeline: Pipeline, clock: Clock) -> None:
        self.db, self.pipeline, self.clock = db, pipeline, clock

    def follow(self, token: str, *, count: bool = True) -> Followed:
        if not links.TOKEN.match(token):
            raise NotFoundError("no such link")
        target = channels.find_link(self.db, token)
        if target is None:
            raise NotFoundError("no such link")
        if not count:
            return Followed(target.url, False)
        return Followed(target.url, self._record(target))

    def _record(self, target: channels.LinkTarget) -> bool:
        now = self.clock.now()
        message: dict[str, Any] = {
            "type": "track",
            "event": EVENT_BY_CHANNEL.get(target.channel, "link_clicked"),
            "messageId": f"click:{target.token}:{int(now.timestamp()) // 60}",
            "timestamp": now.isoformat(),
            "properties": {
                "url": target.url,
                "playbook": target.playbook,
                "step": target.step_id,
                "channel": target.channel,
                "send": target.send_key,
            },
        }
        by_context = target.user_id is None
        if by_context:
            # Nobody's user id: the address the message went to is who clicked.
            trait = "email" if target.channel == "email" else "phone"
            message["context"] = {"traits": {trait: target.to}}
        else:
            message["userId"] = target.user_id
        workspace = workspaces.get_workspace(self.db, target.workspace_id)
        result = self.pipeline.ingest(workspace, BatchInput([message], source=SOURCE, identified_by_context=by_context))
        if result.rejected or result.dead_lettered:
            # The person still gets where they were going; the failure is ours to replay.
            log.warning("a click was not stored", extra={"workspace_id": target.workspace_id, "send": target.send_key})
        return bool(result.accepted)
