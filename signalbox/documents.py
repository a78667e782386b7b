"""One mapper from service dataclasses to the JSON documents the CLI and the API both print."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from signalbox.channels.schemas import OutboxItem, SendInfo, TaskInfo
from signalbox.events.schemas import StoredEvent
from signalbox.identity.schemas import MergeInfo, ProfileDocument, ReviewInfo
from signalbox.ingestion.schemas import DeadLetterInfo
from signalbox.journeys.schemas import DecisionInfo, EnrollmentInfo, PlaybookInfo
from signalbox.profiles.schemas import Signals


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def profile_doc(p: ProfileDocument) -> dict[str, Any]:
    return {
        "user_id": p.user_id,
        "profile_id": p.id,
        "traits": p.traits,
        "identifiers": [{"type": i.type, "value": i.value} for i in p.identifiers],
        "consent": p.consent,
        "first_seen": iso(p.first_seen),
        "last_seen": iso(p.last_seen),
        "event_counts": p.event_counts,
        **signals_doc(p.signals),
    }


def signals_doc(s: Signals | None) -> dict[str, Any]:
    return {
        "at_risk_score": s.at_risk_score if s else None,
        "at_risk_band": s.at_risk_band if s else None,
        "at_risk_components": s.at_risk_components if s else None,
        "score_as_of": s.score_as_of.isoformat() if s and s.score_as_of else None,
        "scored_at": iso(s.scored_at) if s else None,
        "computed_traits": s.computed_traits if s else None,
        "traits_computed_at": iso(s.traits_computed_at) if s else None,
        "churn_probability": s.churn_probability if s else None,
        "churn_model_id": s.churn_model_id if s else None,
        "predicted_at": iso(s.predicted_at) if s else None,
    }


def event_doc(e: StoredEvent) -> dict[str, Any]:
    return {
        "message_id": e.message_id,
        "type": e.type,
        "event": e.event,
        "properties": e.properties,
        "traits": e.traits if e.type in ("identify", "group") else None,
        "timestamp": iso(e.timestamp),
        "received_at": iso(e.received_at),
    }


def merge_doc(m: MergeInfo) -> dict[str, Any]:
    return {
        "id": m.id,
        "action": m.action,
        "source_profile_id": m.source_profile_id,
        "target_profile_id": m.target_profile_id,
        "reason": m.reason,
        "actor": m.actor,
        "undoes_id": m.undoes_id,
        "created_at": iso(m.created_at),
    }


def review_doc(r: ReviewInfo) -> dict[str, Any]:
    return {
        "id": r.id,
        "profile_a_id": r.profile_a_id,
        "profile_b_id": r.profile_b_id,
        "user_id_a": r.user_id_a,
        "user_id_b": r.user_id_b,
        "reason": r.reason,
        "status": r.status,
        "created_at": iso(r.created_at),
        "decided_at": iso(r.decided_at),
    }


def dead_letter_doc(d: DeadLetterInfo) -> dict[str, Any]:
    return {
        "id": d.id,
        "kind": d.kind,
        "step": d.step,
        "reason": d.reason,
        "source": d.source,
        "status": d.status,
        "message_id": d.message_id,
        "received_at": iso(d.received_at),
        "replayed_at": iso(d.replayed_at),
    }


# ---- playbooks and their effects ---------------------------------------------------------


def playbook_doc(p: PlaybookInfo) -> dict[str, Any]:
    return {
        "playbook": p.playbook,
        "name": p.name,
        "purpose": p.purpose,
        "trigger": p.trigger,
        "version": p.version,
        "status": p.status,
        "updated_at": iso(p.updated_at),
    }


def enrollment_doc(e: EnrollmentInfo) -> dict[str, Any]:
    return {
        "id": e.id,
        "playbook": e.playbook,
        "version": e.version,
        "user_id": e.user_id,
        "entry_key": e.entry_key or None,
        "status": e.status,
        "exit_reason": e.exit_reason,
        "holdout": e.holdout,
        "next_step": e.position,
        "due_at": iso(e.due_at),
        "created_at": iso(e.created_at),
    }


def decision_doc(d: DecisionInfo) -> dict[str, Any]:
    return {
        "enrollment_id": d.enrollment_id,
        "user_id": d.user_id,
        "playbook": d.playbook,
        "step": d.step,
        "outcome": d.outcome,
        "reason": d.reason,
        "channel": d.channel,
        "at": iso(d.at),
        "detail": d.detail,
    }


def send_doc(s: SendInfo) -> dict[str, Any]:
    return {
        "user_id": s.user_id,
        "channel": s.channel,
        "playbook": s.playbook,
        "step": s.step,
        "status": s.status,
        "idempotency_key": s.idempotency_key,
        "created_at": iso(s.created_at),
    }


def outbox_doc(o: OutboxItem) -> dict[str, Any]:
    return {
        "idempotency_key": o.idempotency_key,
        "channel": o.channel,
        "to": o.to,
        "subject": o.subject,
        "body": o.body,
        "created_at": iso(o.created_at),
        "provider": o.provider,
        "provider_id": o.provider_id,
        "status": o.status,
        "error": o.error,
        "updated_at": iso(o.updated_at) if o.updated_at else None,
    }


def task_doc(t: TaskInfo) -> dict[str, Any]:
    return {
        "id": t.id,
        "user_id": t.user_id,
        "playbook": t.playbook,
        "title": t.title,
        "role": t.role,
        "location": t.location,
        "priority": t.priority,
        "status": t.status,
        "due_at": iso(t.due_at),
        "created_at": iso(t.created_at),
        "done_at": iso(t.done_at),
    }
