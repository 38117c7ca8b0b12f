"""Push stage: claim queued push deliveries, send them in one batch, record, advance."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from notifier.domain import states
from notifier.domain.outcomes import EXPIRED
from notifier.pipeline import publish
from notifier.pipeline.advance import advance_messages
from notifier.pipeline.record import record_outcomes
from notifier.providers.gateway import PushGateway, process_gateway
from notifier.providers.push_job import PushJob
from notifier.store import repo
from notifier.store.db import transaction
from notifier.store.models import Delivery, Message


def _job(delivery: Delivery, message: Message) -> PushJob:
    return PushJob(
        delivery_id=str(delivery.id),
        platform=delivery.platform or "",
        token=delivery.target,
        title=message.push_title or "",
        body=message.push_body or "",
        expires_at=message.expires_at,
        data=dict(message.push_data),
        collapse_id=message.push_options.get("collapse_id"),
        background=bool(message.push_options.get("background", False)),
        priority=str(message.push_options.get("priority", "high")),
    )


def send_push(delivery_ids: Sequence[uuid.UUID], gateway: PushGateway | None = None) -> int:
    """Deliver a batch of push deliveries; returns how many this call claimed."""
    now = repo.utcnow()
    with transaction() as session:
        claimed, messages = repo.claim_queued(session, delivery_ids)
    if not claimed:
        return 0
    live = [d for d in claimed if messages[d.message_id].expires_at > now]
    outcomes = (gateway or process_gateway()).send([_job(d, messages[d.message_id]) for d in live])
    expired = [d for d in claimed if d not in live]
    outcomes += [EXPIRED] * len(expired)
    with transaction() as session:
        result = record_outcomes(session, live + expired, outcomes, states.SENT)
    for delivery_id, delay in result.retries:
        publish.push([delivery_id], countdown=delay)
    due = {
        m.id: (m.receipt_due_at - repo.utcnow()).total_seconds()
        for m in (messages[d.message_id] for d in result.sent)
        if m.receipt_due_at is not None
    }
    for message_id, delay in due.items():
        publish.receipt_check([message_id], delay)
    advance_messages(sorted(result.messages))
    return len(claimed)
