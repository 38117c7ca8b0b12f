"""Apply the pure `states.advance` rule to stored messages: next step, cancel, expire, finish."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from notifier.domain import states
from notifier.domain.policy import MessageClass, Trigger, plan_from_json
from notifier.metrics import FALLBACKS
from notifier.pipeline import publish
from notifier.store import repo
from notifier.store.db import transaction
from notifier.store.models import Delivery, Message
from notifier.store.repo import EventRow

# A security notice that left the queue (or ended) releases the device it is about.
NOTICE_GONE = frozenset(states.DELIVERY_FINAL | {states.SUBMITTED})


@dataclass
class _Applied:
    started: list[publish.Job] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    released: list[uuid.UUID] = field(default_factory=list)


def progress_of(message: Message) -> states.Progress:
    plan = plan_from_json(message.policy, message.receipt_deadline_s, message.chain)
    return states.Progress(
        plan,
        message.step,
        message.receipt_due_at,
        message.expires_at,
        Trigger(message.confirm_trigger),
    )


def advance_messages(message_ids: Sequence[uuid.UUID], now: datetime | None = None) -> None:
    """Decide and apply the next steps of each message; publishes started steps after commit."""
    if not message_ids:
        return
    now = now or repo.utcnow()
    applied = _Applied()
    with transaction() as session:
        messages = [
            m for m in repo.lock_messages(session, message_ids) if m.state == states.ACCEPTED
        ]
        by_message: dict[uuid.UUID, list[Delivery]] = defaultdict(list)
        repo.lock_deliveries_of(session, [m.id for m in messages])
        for d in repo.deliveries_of(session, [m.id for m in messages]):
            by_message[d.message_id].append(d)
        for message in messages:
            _apply(session, message, by_message[message.id], now, applied)
        repo.add_events(session, applied.events, now)
        repo.release_held_devices(session, applied.released)
    publish.deliveries(applied.started)


def _apply(
    session: Session,
    message: Message,
    deliveries: list[Delivery],
    now: datetime,
    applied: _Applied,
) -> None:
    views = [states.DeliveryView(d.id, d.channel, d.state, d.step) for d in deliveries]
    steps = states.advance(views, progress_of(message), now)
    planned = moved = 0

    def move(
        ids: list[uuid.UUID], expected: str, new: str, kind: str, detail: str
    ) -> set[uuid.UUID]:
        nonlocal planned, moved
        done = repo.transition(session, ids, expected, new)
        planned, moved = planned + len(ids), moved + len(done)
        applied.events.extend(EventRow(message.id, kind, detail, i) for i in done)
        return set(done)

    move(
        steps.unconfirm_push,
        states.SENT,
        states.UNCONFIRMED,
        "receipt_missed",
        "no device receipt by the deadline",
    )
    move(
        steps.withdraw,
        states.QUEUED,
        states.CANCELLED,
        "withdrawn",
        "the next step took over before this one was sent",
    )
    move(
        steps.cancel_standby,
        states.STANDBY,
        states.CANCELLED,
        "step_cancelled",
        "an earlier step was confirmed",
    )
    move(
        steps.expire_standby,
        states.STANDBY,
        states.EXPIRED,
        "step_expired",
        "the message expired before this step ran",
    )
    if steps.next_step is not None:
        label = (
            f"step {steps.next_step + 1}: earlier step not confirmed ({message.confirm_trigger})"
        )
        started = move(steps.start, states.STANDBY, states.QUEUED, "fallback", label)
        bulk = MessageClass(message.message_class).bulk
        for d in deliveries:
            if d.id in started:
                applied.started.append(publish.Job(d.id, d.channel, bulk))
                FALLBACKS.labels(d.channel).inc()
        message.step, message.receipt_due_at = steps.next_step, steps.next_due_at
        message.updated_at = now
    if message.about_device is not None and any(
        d.channel == states.SMS and d.state in NOTICE_GONE for d in deliveries
    ):
        applied.released.append(message.about_device)
    # Finish only on the picture we acted on: if a row moved under us, its own writer advances.
    if (
        steps.final_state
        and planned == moved
        and repo.finish_message(session, message.id, steps.final_state)
    ):
        applied.events.append(EventRow(message.id, steps.final_state, None))
        if message.about_device is not None:
            applied.released.append(message.about_device)
