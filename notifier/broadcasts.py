"""Broadcasts: accept one push for a segment, report its progress while it fans out and sends."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from config.settings import get_settings
from notifier import acceptance
from notifier.domain.broadcasts import parse_broadcast
from notifier.domain.errors import NotFound
from notifier.domain.segments import parse_segment
from notifier.pipeline import publish
from notifier.pipeline.fanout import FANNING_OUT
from notifier.store import audience, repo
from notifier.store.db import transaction
from notifier.store.ids import new_id
from notifier.store.models import Broadcast, Delivery, Message

SENT = ("sent", "acked", "opened", "unconfirmed")


def send_broadcast_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Accept a broadcast; returns its id and how many users it plans to reach."""
    req = parse_broadcast(payload, acceptance.limits(get_settings()))
    now = repo.utcnow()
    with transaction() as session:
        planned = audience.count_users(session, req.segment)
        b = Broadcast(
            id=new_id(),
            name=req.name,
            segment=req.segment.to_json(),
            message_class=req.message_class.value,
            push_title=req.push.title,
            push_body=req.push.body,
            push_data=dict(req.push.data),
            push_options=req.push.options(),
            receipt_deadline_s=req.receipt_deadline,
            expires_at=now + timedelta(seconds=req.ttl),
            state=FANNING_OUT,
            planned=planned,
            enqueued=0,
            created_at=now,
            updated_at=now,
        )
        session.add(b)
    publish.fanout(b.id)  # if this is lost, the sweep starts the fan-out
    return {"broadcast_id": str(b.id), "planned": planned}


def progress(broadcast_id: uuid.UUID) -> dict[str, Any]:
    """Planned, enqueued, sent and failed so far; cheap enough to poll while it runs."""
    with transaction() as session:
        b = session.get(Broadcast, broadcast_id)
        if b is None:
            raise NotFound("broadcast", broadcast_id)
        by_state = dict(
            session.execute(
                select(Delivery.state, func.count())
                .join(Message, Message.id == Delivery.message_id)
                .where(Message.broadcast_id == broadcast_id)
                .group_by(Delivery.state)
            ).all()
        )
    return {
        "broadcast_id": str(b.id),
        "name": b.name,
        "segment": parse_segment(b.segment).to_json(),
        "state": b.state,
        "planned": b.planned,
        "enqueued": b.enqueued,
        "sent": sum(n for s, n in by_state.items() if s in SENT),
        "failed": sum(n for s, n in by_state.items() if s in ("failed", "expired")),
        "deliveries": by_state,
        "created_at": b.created_at.isoformat(),
        "completed_at": b.completed_at.isoformat() if b.completed_at else None,
    }
