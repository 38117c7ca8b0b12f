"""Push stage: claim queued push deliveries, send them in one batch, record, advance."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from config.settings import get_settings
from notifier.domain import states
from notifier.domain.outcomes import EXPIRED, Kind, Outcome
from notifier.domain.policy import MessageClass, plan_from_json
from notifier.metrics import PROVIDER_SECONDS
from notifier.pipeline import batching, publish
from notifier.pipeline.advance import advance_messages, progress_of
from notifier.pipeline.record import Recorded, record_outcomes
from notifier.providers.gateway import PushGateway, process_gateway
from notifier.providers.push_job import PushJob
from notifier.store import claims, repo
from notifier.store.claims import PushDelivery, PushMessage
from notifier.store.db import in_transaction_until, transaction


def _job(delivery: PushDelivery, message: PushMessage) -> PushJob:
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


def send_push(
    delivery_ids: Sequence[uuid.UUID], gateway: PushGateway | None = None, lane: str | None = None
) -> int:
    """Deliver a batch of push deliveries; returns how many this call claimed. `lane`: the
    queue the task came from; a transactional one tops the batch up (pipeline.batching)."""
    now = repo.utcnow()
    # Record within most of the lease: past it the sweep may re-queue what we already sent.
    record_by = time.monotonic() + 0.8 * get_settings().sending_lease_seconds
    # One statement on PostgreSQL, whatever the top-up (claims.claim_pushes).
    with transaction(one_statement=True) as session:
        top_up = batching.top_up(lane, free=claims.top_up_is_free(session))
        claimed, messages = claims.claim_pushes(session, delivery_ids, top_up)
    if not claimed:
        return 0
    batching.count_topped_up(top_up, delivery_ids, [d.id for d in claimed])
    live = [d for d in claimed if messages[d.message_id].expires_at > now]
    expired = [d for d in claimed if messages[d.message_id].expires_at <= now]
    with PROVIDER_SECONDS.labels("push").time():
        outcomes = (gateway or process_gateway()).send(
            [_job(d, messages[d.message_id]) for d in live]
        )
    clocks = _clocks_started(live, outcomes, messages)
    outcomes += [EXPIRED] * len(expired)

    def record(session: Session) -> Recorded[PushDelivery]:
        repo.start_clocks(session, clocks)
        return record_outcomes(session, live + expired, outcomes, states.SENT)

    result = in_transaction_until(record, record_by)
    for message_id, due in clocks.items():
        messages[message_id].receipt_due_at = messages[message_id].receipt_due_at or due
    if result.retries:  # rare: a class lookup per claimed row would cost every batch
        bulk = {d.id: MessageClass(messages[d.message_id].message_class).bulk for d in claimed}
        for delivery_id, delay in result.retries:
            publish.push([delivery_id], countdown=delay, bulk=bulk[delivery_id])
    _schedule_receipt_checks([messages[d.message_id] for d in result.sent])
    advance_messages(sorted(result.settled))
    return len(claimed)


def _clocks_started(
    live: Sequence[PushDelivery],
    outcomes: Sequence[Outcome],
    messages: Mapping[uuid.UUID, PushMessage],
) -> dict[uuid.UUID, datetime]:
    """Receipt deadlines that start now: of messages sent whose step had no deadline yet."""
    now = repo.utcnow()
    dues: dict[uuid.UUID, datetime] = {}
    # A broadcast's messages share plan, step and expiry: one computation per distinct kind.
    seen: dict[tuple[str, int, int, datetime], datetime] = {}
    for delivery, outcome in zip(live, outcomes, strict=True):
        m = messages[delivery.message_id]
        if outcome.kind is not Kind.SENT or m.receipt_due_at is not None:
            continue
        if m.chain:
            dues[m.id] = _due(m, now)
            continue
        kind = (m.policy, m.receipt_deadline_s, m.step, m.expires_at)
        if kind not in seen:
            seen[kind] = _due(m, now)
        dues[m.id] = seen[kind]
    return dues


def _due(message: PushMessage, now: datetime) -> datetime:
    deadline = progress_of(message).plan[message.step].deadline
    return states.step_due(now, deadline, message.expires_at)


def _schedule_receipt_checks(sent: Sequence[PushMessage]) -> None:
    checks = {(m.receipt_due_at, _on_last_step(m)) for m in sent if m.receipt_due_at is not None}
    for due, label_only in sorted(checks):
        publish.receipts_due(due, label_only=label_only)


def _on_last_step(message: PushMessage) -> bool:
    """Whether the message's current step is its plan's last: its deadline starts nothing.
    (A named plan comes from plan_from_json's cache: no cache of its own here.)"""
    plan = plan_from_json(message.policy, message.receipt_deadline_s, message.chain)
    return message.step >= len(plan) - 1
