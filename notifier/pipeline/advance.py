"""Apply the pure `states.advance` rule to stored messages: fallback, cancel, finish."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from notifier.domain import states
from notifier.pipeline import publish
from notifier.store import repo
from notifier.store.db import transaction
from notifier.store.models import Delivery, Message
from notifier.store.repo import EventRow


def advance_messages(message_ids: Sequence[uuid.UUID], now: datetime | None = None) -> None:
    """Decide and apply the next steps of each message; publishes SMS fallbacks after commit."""
    if not message_ids:
        return
    now = now or repo.utcnow()
    with transaction() as session:
        messages = [
            m for m in repo.lock_messages(session, message_ids) if m.state == states.ACCEPTED
        ]
        by_message: dict[uuid.UUID, list[Delivery]] = defaultdict(list)
        for d in repo.deliveries_of(session, [m.id for m in messages]):
            by_message[d.message_id].append(d)
        started: list[uuid.UUID] = []
        events: list[EventRow] = []
        for message in messages:
            started += _apply(session, message, by_message[message.id], now, events)
        repo.add_events(session, events, now)
    publish.sms(started)


def _apply(
    session: Session,
    message: Message,
    deliveries: list[Delivery],
    now: datetime,
    events: list[EventRow],
) -> list[uuid.UUID]:
    views = [states.DeliveryView(d.id, d.channel, d.state) for d in deliveries]
    steps = states.advance(views, message.receipt_due_at, now)
    planned = moved = 0

    def move(
        ids: list[uuid.UUID], expected: str, new: str, kind: str, detail: str
    ) -> list[uuid.UUID]:
        nonlocal planned, moved
        done = repo.transition(session, ids, expected, new)
        planned, moved = planned + len(ids), moved + len(done)
        events.extend(EventRow(message.id, kind, detail, i) for i in done)
        return done

    move(
        steps.unconfirm_push,
        states.SENT,
        states.UNCONFIRMED,
        "receipt_missed",
        "no device receipt by the deadline",
    )
    move(
        steps.cancel_push,
        states.QUEUED,
        states.CANCELLED,
        "push_withdrawn",
        "SMS took over before this push was sent",
    )
    if steps.cancel_sms is not None:
        move(
            [steps.cancel_sms],
            states.STANDBY,
            states.CANCELLED,
            "sms_cancelled",
            "push confirmed by the device",
        )
    started: list[uuid.UUID] = []
    if steps.start_sms is not None:
        started = move(
            [steps.start_sms],
            states.STANDBY,
            states.QUEUED,
            "fallback",
            "push not confirmed: SMS supplement",
        )
    # Finish only on the picture we acted on: if a row moved under us, its own writer advances.
    if (
        steps.final_state
        and planned == moved
        and repo.finish_message(session, message.id, steps.final_state)
    ):
        events.append(EventRow(message.id, steps.final_state, None))
    return started
