"""Replaying deliveries that ended badly (failed, rate limited, undelivered, …).

A replay moves each selected delivery back to `queued` with a conditional update (so two
replays running at once cannot both take it), reopens its message, writes a `replayed` event,
and publishes it. A delivery that was sent meanwhile is not selected again: replaying twice is
safe. `force` also takes deliveries that did reach the provider, for a deliberate resend.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update

from notifier.domain import states
from notifier.domain.errors import InvalidInput
from notifier.domain.policy import MessageClass
from notifier.pipeline import publish
from notifier.store import repo
from notifier.store.db import transaction
from notifier.store.models import Delivery, Message
from notifier.store.repo import EventRow
from notifier.store.sql import in_states

REPLAYABLE = (
    states.FAILED,
    states.RATE_LIMITED,
    states.UNDELIVERED,
    states.UNCONFIRMED,
    states.CANCELLED,
)
# What already reached a provider: replayed only with force.
REACHED = (states.SENT, states.ACKED, states.SUBMITTED, states.DELIVERED)


@dataclass(frozen=True)
class Selection:
    states: tuple[str, ...] = (states.FAILED,)
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    error_code: str | None = None
    user_id: str | None = None
    message_id: uuid.UUID | None = None
    force: bool = False
    limit: int = 100_000

    def check(self) -> None:
        allowed = REPLAYABLE + (REACHED if self.force else ())
        bad = [s for s in self.states if s not in allowed]
        if bad:
            hint = "" if self.force else f"; {', '.join(REACHED)} need --force"
            raise InvalidInput("--state", f"{', '.join(bad)} cannot be replayed{hint}")
        if self.channel not in (None, states.PUSH, states.SMS):
            raise InvalidInput("--channel", "push or sms")
        if self.since and self.until and self.since > self.until:
            raise InvalidInput("--since", "must be before --until")

    def query(self) -> Select[Delivery, str]:
        stmt = (
            select(Delivery, Message.user_id)
            .join(Message, Message.id == Delivery.message_id)
            .where(in_states(Delivery.state, self.states))  # checked names, written out
            .order_by(Delivery.updated_at, Delivery.id)
            .limit(self.limit)
        )
        if self.channel is not None:
            stmt = stmt.where(Delivery.channel == self.channel)
        if self.since is not None:
            stmt = stmt.where(Delivery.updated_at >= self.since)
        if self.until is not None:
            stmt = stmt.where(Delivery.updated_at <= self.until)
        if self.error_code is not None:
            stmt = stmt.where(Delivery.error_code == self.error_code)
        if self.user_id is not None:
            stmt = stmt.where(Message.user_id == self.user_id)
        if self.message_id is not None:
            stmt = stmt.where(Delivery.message_id == self.message_id)
        return stmt


@dataclass(frozen=True)
class Candidate:
    delivery_id: uuid.UUID
    message_id: uuid.UUID
    user_id: str
    channel: str
    state: str
    error_code: str | None
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "delivery_id": str(self.delivery_id),
            "message_id": str(self.message_id),
            "user_id": self.user_id,
            "channel": self.channel,
            "state": self.state,
            "error_code": self.error_code,
            "updated_at": self.updated_at.isoformat(),
        }


def candidates(selection: Selection) -> list[Candidate]:
    selection.check()
    with transaction() as session:
        rows = session.execute(selection.query()).all()
    return [
        Candidate(d.id, d.message_id, user, d.channel, d.state, d.error_code, d.updated_at)
        for d, user in rows
    ]


def replay_one(candidate: Candidate, reason: str) -> bool:
    """Re-queue one delivery if it is still in the state it was selected in."""
    with transaction() as session:
        repo.lock_message_rows(session, [candidate.message_id])  # message first, as advance does
        moved = repo.transition(
            session,
            [candidate.delivery_id],
            candidate.state,
            states.QUEUED,
            replays=Delivery.replays + 1,
            next_attempt_at=None,
        )
        if not moved:
            return False
        message_class = session.execute(
            update(Message)
            .where(Message.id == candidate.message_id)
            .values(state=states.ACCEPTED, completed_at=None, updated_at=repo.utcnow())
            .returning(Message.message_class)
            .execution_options(synchronize_session=False)
        ).scalar_one()
        detail = f"from {candidate.state} ({candidate.error_code or 'no code'}): {reason}"
        repo.add_events(
            session, [EventRow(candidate.message_id, "replayed", detail, candidate.delivery_id)]
        )
    # A failed publish is found by the sweep: the row is queued.
    bulk = MessageClass(message_class).bulk
    publish.deliveries([publish.Job(candidate.delivery_id, candidate.channel, bulk)])
    return True


def replay(
    chosen: Sequence[Candidate],
    reason: str,
    pace: Callable[[], None] = lambda: None,
    progress: Callable[[Candidate, bool], None] = lambda c, ok: None,
) -> tuple[int, int]:
    """Replay each candidate; returns (replayed, skipped because it moved on meanwhile)."""
    done = skipped = 0
    for candidate in chosen:
        pace()
        ok = replay_one(candidate, reason)
        done, skipped = done + ok, skipped + (not ok)
        progress(candidate, ok)
    return done, skipped
