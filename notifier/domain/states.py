"""The message and delivery state machines, and the pure rule that advances a message.

Delivery (push):  queued → sending → sent → acked → opened
                  sending → queued (retry) | failed | expired ;  queued → cancelled (withdrawn)
                  sent → unconfirmed (deadline) → acked | opened (a late receipt is recorded)
Delivery (sms):   queued → sending → submitted → delivered | undelivered
                  sending → queued (retry, quiet hours) | failed | rate_limited | expired
Any later step:   standby → queued (the step runs) | cancelled (confirmed) | expired (TTL)
Message:          accepted → delivered | unconfirmed | failed | expired

docs/lifecycle.md draws these. Workers never assign a state blindly: they move a row from an
expected state to the next one with a conditional UPDATE, so two workers holding the same task
cannot both act on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from notifier.domain.policy import PUSH, SMS, Plan, Trigger

__all__ = ["PUSH", "SMS"]

# delivery states
STANDBY = "standby"
QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
ACKED = "acked"
OPENED = "opened"
UNCONFIRMED = "unconfirmed"
SUBMITTED = "submitted"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
FAILED = "failed"
CANCELLED = "cancelled"
RATE_LIMITED = "rate_limited"
EXPIRED = "expired"

# message states
ACCEPTED = "accepted"
MESSAGE_FINAL = frozenset({DELIVERED, UNCONFIRMED, FAILED, EXPIRED})

# Reached the person (whatever the trigger asked for, the final state says so).
REACHED = frozenset({ACKED, OPENED, DELIVERED})
DELIVERY_FINAL = frozenset(
    {ACKED, OPENED, UNCONFIRMED, DELIVERED, UNDELIVERED, FAILED, CANCELLED, RATE_LIMITED, EXPIRED}
)
IN_FLIGHT = frozenset({QUEUED, SENDING, SENT, SUBMITTED})


class Delivered(Protocol):
    """What the rule reads of a delivery: the stored rows a decision locks pass as they are
    (an ack batch decides on hundreds; a copy of each cost more than the rule itself)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def channel(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def step(self) -> int: ...


@dataclass(frozen=True)
class DeliveryView:
    """A delivery as the rule sees it, for callers that hold no stored row (tests, tools)."""

    id: uuid.UUID
    channel: str
    state: str
    step: int = 0


class Progress(NamedTuple):
    """Where a message stands in its plan (a tuple: one is made per message decided)."""

    plan: Plan
    step: int
    due_at: datetime | None
    expires_at: datetime
    trigger: Trigger = Trigger.NOT_RECEIVED


@dataclass
class Steps:
    """What to do next for one message; each item is applied as a conditional update."""

    unconfirm_push: list[uuid.UUID] = field(default_factory=list)
    withdraw: list[uuid.UUID] = field(default_factory=list)
    start: list[uuid.UUID] = field(default_factory=list)
    cancel_standby: list[uuid.UUID] = field(default_factory=list)
    expire_standby: list[uuid.UUID] = field(default_factory=list)
    next_step: int | None = None
    next_due_at: datetime | None = None
    final_state: str | None = None


def confirms(channel: str, state: str, trigger: Trigger) -> bool:
    """Whether a delivery in this state confirms its step (no next step needed)."""
    if channel == SMS:
        return state == DELIVERED
    return state == OPENED or (state == ACKED and trigger is Trigger.NOT_RECEIVED)


def _may_still_confirm(channel: str, state: str, trigger: Trigger) -> bool:
    if state in IN_FLIGHT:
        return True
    # Arrived but not yet opened: under not_opened only the deadline decides.
    return channel == PUSH and state == ACKED and trigger is Trigger.NOT_OPENED


def step_due(now: datetime, deadline: int, expires_at: datetime) -> datetime:
    """A step waits no longer than the message lives."""
    return min(now + timedelta(seconds=deadline), expires_at)


def final_state(states: Iterable[str]) -> str | None:
    found = set(states)
    if not found or not found <= DELIVERY_FINAL:
        return None
    if not found.isdisjoint(REACHED):
        return DELIVERED
    if EXPIRED in found:
        return EXPIRED
    if UNCONFIRMED in found:
        return UNCONFIRMED
    return FAILED


def advance(deliveries: Sequence[Delivered], progress: Progress, now: datetime) -> Steps:
    """Decide the next steps of a message from its deliveries' states and the clock."""
    steps = Steps()
    state = {d.id: d.state for d in deliveries}
    due = progress.due_at is not None and now >= progress.due_at
    if due:
        # Earlier steps too: a push still being sent when its step ended is judged now.
        for d in deliveries:
            if d.step <= progress.step and d.channel == PUSH and d.state == SENT:
                steps.unconfirm_push.append(d.id)
                state[d.id] = UNCONFIRMED
    standby = [d for d in deliveries if state[d.id] == STANDBY]
    if standby:
        confirmed = any(
            confirms(d.channel, state[d.id], progress.trigger)
            for d in deliveries
            if d.step <= progress.step
        )
        trigger = progress.trigger
        current = [d for d in deliveries if d.step == progress.step]
        open_step = any(_may_still_confirm(d.channel, state[d.id], trigger) for d in current)
        if confirmed:
            steps.cancel_standby = [d.id for d in standby]
        elif now >= progress.expires_at:
            # No stale one-time code an hour late: a step the TTL overtook never runs.
            steps.expire_standby = [d.id for d in standby]
        elif due or not open_step:
            _next_step(steps, deliveries, standby, state, progress, now)
        for i in steps.cancel_standby:
            state[i] = CANCELLED
        for i in steps.expire_standby:
            state[i] = EXPIRED
    steps.final_state = final_state(state.values())
    return steps


def _next_step(
    steps: Steps,
    deliveries: Sequence[Delivered],
    standby: Sequence[Delivered],
    state: dict[uuid.UUID, str],
    progress: Progress,
    now: datetime,
) -> None:
    """The step was not confirmed in time (or cannot be): the next step with targets runs, and
    what the earlier steps still hold in the queue is withdrawn so nobody is told twice."""
    nxt = min(d.step for d in standby)
    steps.start = [d.id for d in standby if d.step == nxt]
    for i in steps.start:
        state[i] = QUEUED
    for d in deliveries:
        if d.step < nxt and state[d.id] == QUEUED:
            steps.withdraw.append(d.id)
            state[d.id] = CANCELLED
    steps.next_step = nxt
    steps.next_due_at = step_due(now, progress.plan[nxt].deadline, progress.expires_at)
