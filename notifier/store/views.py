"""Read models: a message with its deliveries, attempts and timeline, as plain dicts."""

from __future__ import annotations

import uuid
from typing import Any

from notifier.domain import states
from notifier.domain.errors import NotFound
from notifier.domain.masking import mask_phone
from notifier.domain.policy import plan_from_json
from notifier.store import repo
from notifier.store.db import transaction
from notifier.store.models import Event, Message


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def message_view(message_id: uuid.UUID) -> dict[str, Any]:
    with transaction() as session:
        message = session.get(Message, message_id)
        if message is None:
            raise NotFound("message", message_id)
        deliveries = repo.deliveries_of(session, [message_id])
        attempts = repo.attempts_of(session, [d.id for d in deliveries])
        events = repo.timeline(session, message_id)
    by_delivery: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for a in attempts:
        by_delivery.setdefault(a.delivery_id, []).append(
            {
                "number": a.number,
                "outcome": a.outcome,
                "status_code": a.status_code,
                "error_code": a.error_code,
                "detail": a.detail,
                "provider_ref": a.provider_ref,
                "at": _iso(a.created_at),
            }
        )
    plan = plan_from_json(message.policy, message.receipt_deadline_s, message.chain)
    return {
        "id": str(message.id),
        "user_id": message.user_id,
        "class": message.message_class,
        "policy": message.policy,
        "trigger": message.confirm_trigger,
        "plan": [s.to_json() for s in plan],
        "step": message.step,
        "state": message.state,
        "idempotency_key": message.idempotency_key,
        "created_at": _iso(message.created_at),
        "receipt_due_at": _iso(message.receipt_due_at),
        "expires_at": _iso(message.expires_at),
        "completed_at": _iso(message.completed_at),
        "deliveries": [
            {
                "id": str(d.id),
                "channel": d.channel,
                "step": d.step,
                "platform": d.platform,
                "target": mask_phone(d.target) if d.channel == states.SMS else d.target,
                "state": d.state,
                "attempts": by_delivery.get(d.id, []),
                "provider_ref": d.provider_ref,
                "error_code": d.error_code,
                "sms_text": d.sms_text,
                "sms_encoding": d.sms_encoding,
                "sms_parts": d.sms_parts,
                "sms_cost": str(d.sms_cost) if d.sms_cost is not None else None,
                "error_detail": d.error_detail,
            }
            for d in deliveries
        ],
        "timeline": _accepted(message, events)
        + [
            {
                "at": _iso(e.created_at),
                "kind": e.kind,
                "detail": e.detail,
                "delivery_id": str(e.delivery_id) if e.delivery_id else None,
            }
            for e in events
        ],
    }


def _accepted(message: Message, events: list[Event]) -> list[dict[str, Any]]:
    """A broadcast message's acceptance, read off its row: the fan-out writes no event for
    it (messages fanned out before it stopped have theirs, which then comes first)."""
    if message.broadcast_id is None or (events and events[0].kind == states.ACCEPTED):
        return []
    accepted = {
        "at": _iso(message.created_at),
        "kind": states.ACCEPTED,
        "detail": f"broadcast {message.broadcast_id}",
        "delivery_id": None,
    }
    return [accepted]
