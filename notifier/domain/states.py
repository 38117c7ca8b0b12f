"""The message and delivery state machines, and the pure rule that advances a message.

Delivery (push):  queued → sending → sent → acked | unconfirmed
                  sending → queued (retry) | failed ;  queued → cancelled (SMS took over)
                  unconfirmed → acked (a late receipt is still recorded)
Delivery (sms):   standby → queued | cancelled ;  queued → sending → submitted | queued | failed
                  sending → rate_limited (over a per-number limit) | queued (quiet hours)
                  submitted → delivered | undelivered
Message:          accepted → delivered | unconfirmed | failed

Workers never assign a state blindly: they move a row from an expected state to the next one
with a conditional UPDATE, so two workers holding the same task cannot both act on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

PUSH = "push"
SMS = "sms"

# delivery states
STANDBY = "standby"
QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
ACKED = "acked"
UNCONFIRMED = "unconfirmed"
SUBMITTED = "submitted"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
FAILED = "failed"
CANCELLED = "cancelled"
RATE_LIMITED = "rate_limited"

# message states
ACCEPTED = "accepted"
MESSAGE_FINAL = frozenset({DELIVERED, UNCONFIRMED, FAILED})

CONFIRMED = frozenset({ACKED, DELIVERED})
DELIVERY_FINAL = frozenset(
    {ACKED, UNCONFIRMED, DELIVERED, UNDELIVERED, FAILED, CANCELLED, RATE_LIMITED}
)
PUSH_PENDING = frozenset({QUEUED, SENDING, SENT})


@dataclass(frozen=True)
class DeliveryView:
    id: uuid.UUID
    channel: str
    state: str


@dataclass
class Steps:
    """What to do next for one message; each item is applied as a conditional update."""

    unconfirm_push: list[uuid.UUID] = field(default_factory=list)
    cancel_push: list[uuid.UUID] = field(default_factory=list)
    start_sms: uuid.UUID | None = None
    cancel_sms: uuid.UUID | None = None
    final_state: str | None = None


def _final_state(states: Sequence[str]) -> str | None:
    if not states or any(s not in DELIVERY_FINAL for s in states):
        return None
    if any(s in CONFIRMED for s in states):
        return DELIVERED
    if UNCONFIRMED in states:
        return UNCONFIRMED
    return FAILED


def advance(
    deliveries: Sequence[DeliveryView],
    receipt_due_at: datetime | None,
    now: datetime,
) -> Steps:
    """Decide the next steps of a message from its deliveries' states and the clock."""
    steps = Steps()
    states = {d.id: d.state for d in deliveries}
    push = [d for d in deliveries if d.channel == PUSH]
    sms = next((d for d in deliveries if d.channel == SMS), None)
    due = receipt_due_at is not None and now >= receipt_due_at

    if due:
        for d in push:
            if d.state == SENT:
                steps.unconfirm_push.append(d.id)
                states[d.id] = UNCONFIRMED

    push_confirmed = any(states[d.id] == ACKED for d in push)
    push_pending = any(states[d.id] in PUSH_PENDING for d in push)
    if sms is not None and sms.state == STANDBY:
        if push_confirmed:
            steps.cancel_sms = sms.id
            states[sms.id] = CANCELLED
        elif due or not push_pending:
            # Supplement: the push was not confirmed in time (or cannot be) → SMS takes over,
            # and a push still waiting in the queue is withdrawn so the user is not told twice.
            steps.start_sms = sms.id
            states[sms.id] = QUEUED
            for d in push:
                if states[d.id] == QUEUED:
                    steps.cancel_push.append(d.id)
                    states[d.id] = CANCELLED
    steps.final_state = _final_state(list(states.values()))
    return steps
