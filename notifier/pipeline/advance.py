"""Apply the pure `states.advance` rule to stored messages: next step, cancel, expire, finish."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from notifier.domain import states
from notifier.domain.policy import MessageClass, plan_from_json, trigger_of
from notifier.metrics import FALLBACKS
from notifier.pipeline import publish
from notifier.store import decision_rows, repo
from notifier.store.db import transaction
from notifier.store.decision_rows import DeliveryRow, MessageRow, PlanRow
from notifier.store.models import Message
from notifier.store.repo import EventRow

# A security notice that left the queue (or ended) releases the device it is about.
NOTICE_GONE = frozenset(states.DELIVERY_FINAL | {states.SUBMITTED})


@dataclass(frozen=True)
class _Move:
    """One planned delivery transition; applied in one statement per (expected, new) pair."""

    message_id: uuid.UUID
    delivery_id: uuid.UUID
    channel: str
    expected: str
    new: str
    kind: str
    detail: str


@dataclass
class _Applied:
    moves: list[_Move] = field(default_factory=list)
    finish: dict[uuid.UUID, str] = field(default_factory=dict)
    started: list[publish.Job] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    released: list[uuid.UUID] = field(default_factory=list)
    # Messages moving to their next step: (step, its receipt deadline).
    steps: dict[uuid.UUID, tuple[int, datetime | None]] = field(default_factory=dict)


def progress_of(message: Message | PlanRow) -> states.Progress:
    plan = plan_from_json(message.policy, message.receipt_deadline_s, message.chain)
    return states.Progress(
        plan,
        message.step,
        message.receipt_due_at,
        message.expires_at,
        trigger_of(message.confirm_trigger),
    )


# Moves a caller makes on the locked picture before the decision (an ack batch moving its
# deliveries): gets the session and every locked delivery by message, updates the state of
# the rows it moved, and returns the events to write.
Moves = Callable[[Session, dict[uuid.UUID, list[DeliveryRow]]], list[EventRow]]


# Locks and reads the messages to advance when they are not named by id (acks: the messages
# of the acknowledged deliveries), so that finding them costs no statement of its own.
Finder = Callable[[Session], list[MessageRow]]


def advance_messages(
    message_ids: Sequence[uuid.UUID] | Finder,
    now: datetime | None = None,
    first: Moves | None = None,
) -> None:
    """Decide and apply the next steps of each message; publishes started steps after commit.

    Messages and their deliveries are locked first (in id order), so the picture each decision
    is made on cannot change under it; the decisions are then applied as a handful of
    set-based statements, not one per message. `first` moves rows on that locked picture in
    the same transaction, before deciding (acks: one transaction instead of two).
    """
    if not callable(message_ids) and not message_ids:
        return
    now = now or repo.utcnow()
    applied = _Applied()
    with transaction() as session:
        if callable(message_ids):
            locked = message_ids(session)
        else:
            locked = decision_rows.lock_messages(session, message_ids)
        if not locked:
            return
        messages = [m for m in locked if m.state == states.ACCEPTED]
        late = [m.id for m in locked if m.state == states.UNCONFIRMED]
        # A caller's moves may touch deliveries of finished messages too (an open reported
        # after the message was delivered), so then every locked message's rows are locked.
        of = [m.id for m in locked] if first else [m.id for m in messages] + late
        by_message: dict[uuid.UUID, list[DeliveryRow]] = defaultdict(list)
        for d in decision_rows.lock_deliveries_of(session, of):
            by_message[d.message_id].append(d)
        if first:
            applied.events += first(session, by_message)
        for message in messages:
            _decide(message, by_message[message.id], now, applied)
        _apply(session, applied, {m.id: m for m in messages}, now)
        _late_receipts(session, late, by_message, applied)
        repo.add_events(session, applied.events, now)
        repo.release_held_devices(session, applied.released)
    publish.deliveries(applied.started)


def _late_receipts(
    session: Session,
    late: list[uuid.UUID],
    by_message: dict[uuid.UUID, list[DeliveryRow]],
    applied: _Applied,
) -> None:
    """A message that ended unconfirmed and then got its receipt after all was delivered:
    the person has it. (Its deadline passed, so no fallback is undone; only the label.)"""
    reached = [m for m in late if any(d.state in states.REACHED for d in by_message[m])]
    for message_id in repo.finish_messages(
        session, reached, states.DELIVERED, from_state=states.UNCONFIRMED
    ):
        applied.events.append(EventRow(message_id, states.DELIVERED, "late receipt"))


# Messages advanced per transaction by a slot's check, and at most this many rounds per check
# (the rest wait for the next slot or the sweep; a check never runs unbounded).
DUE_BATCH = 500
DUE_ROUNDS = 20


# The moment up to which this process last advanced everything due: a slot check that waited
# in the queue past it has nothing left to do (a backlog of checks drains without queries).
_covered_until: datetime | None = None


def advance_due(until: datetime) -> int:
    """Advance every message whose receipt deadline passed by `until` (the end of a check
    slot); returns how many were looked at."""
    global _covered_until
    if _covered_until is not None and until <= _covered_until:
        return 0
    early = (until - repo.utcnow()).total_seconds()
    if 0 < early <= 5:  # the countdown fired a little early (clocks of two hosts differ)
        time.sleep(early)
    total = 0
    for _ in range(DUE_ROUNDS):
        now = repo.utcnow()
        with transaction() as session:
            ids = repo.overdue_messages(session, now, DUE_BATCH)
        advance_messages(ids, now)
        total += len(ids)
        if len(ids) < DUE_BATCH:
            _covered_until = now
            break
    return total


def _decide(
    message: MessageRow, deliveries: list[DeliveryRow], now: datetime, applied: _Applied
) -> None:
    steps = states.advance(deliveries, progress_of(message), now)

    def move(ids: list[uuid.UUID], expected: str, new: str, kind: str, detail: str) -> None:
        if not ids:  # the common case: an acked message moves no other delivery
            return
        channels = {d.id: d.channel for d in deliveries}
        applied.moves.extend(
            _Move(message.id, i, channels[i], expected, new, kind, detail) for i in ids
        )

    move(steps.unconfirm_push, states.SENT, states.UNCONFIRMED, "receipt_missed",
         "no device receipt by the deadline")  # fmt: skip
    move(steps.withdraw, states.QUEUED, states.CANCELLED, "withdrawn",
         "the next step took over before this one was sent")  # fmt: skip
    move(steps.cancel_standby, states.STANDBY, states.CANCELLED, "step_cancelled",
         "an earlier step was confirmed")  # fmt: skip
    move(steps.expire_standby, states.STANDBY, states.EXPIRED, "step_expired",
         "the message expired before this step ran")  # fmt: skip
    if steps.next_step is not None:
        label = (
            f"step {steps.next_step + 1}: earlier step not confirmed ({message.confirm_trigger})"
        )
        move(steps.start, states.STANDBY, states.QUEUED, "fallback", label)
        applied.steps[message.id] = (steps.next_step, steps.next_due_at)
    if message.about_device is not None and any(
        d.channel == states.SMS and d.state in NOTICE_GONE for d in deliveries
    ):
        applied.released.append(message.about_device)
    if steps.final_state:
        applied.finish[message.id] = steps.final_state


def _apply(
    session: Session, applied: _Applied, messages: dict[uuid.UUID, MessageRow], now: datetime
) -> None:
    repo.set_steps(session, applied.steps, now)
    groups: dict[tuple[str, str], list[_Move]] = defaultdict(list)
    for m in applied.moves:
        groups[(m.expected, m.new)].append(m)
    missed: set[uuid.UUID] = set()  # messages with a row that did not move as planned
    for (expected, new), moves in groups.items():
        done = set(repo.transition(session, [m.delivery_id for m in moves], expected, new))
        for m in moves:
            if m.delivery_id not in done:
                missed.add(m.message_id)
                continue
            applied.events.append(EventRow(m.message_id, m.kind, m.detail, m.delivery_id))
            if m.kind == "fallback":
                bulk = MessageClass(messages[m.message_id].message_class).bulk
                applied.started.append(publish.Job(m.delivery_id, m.channel, bulk))
                FALLBACKS.labels(m.channel).inc()
    # Finish only on the picture we acted on: if a row moved under us, its own writer advances.
    finishing: dict[str, list[uuid.UUID]] = defaultdict(list)
    for message_id, state in applied.finish.items():
        if message_id not in missed:
            finishing[state].append(message_id)
    for state, ids in finishing.items():
        for message_id in repo.finish_messages(session, ids, state):
            applied.events.append(EventRow(message_id, state, None))
            about = messages[message_id].about_device
            if about is not None:
                applied.released.append(about)
