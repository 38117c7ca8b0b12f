"""Record provider outcomes on claimed deliveries: state, attempt row, timeline, retry plan."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from config.settings import get_settings
from notifier.domain import states
from notifier.domain.outcomes import Kind, Outcome, backoff_seconds
from notifier.metrics import OUTCOMES
from notifier.store import repo
from notifier.store.claims import PushDelivery
from notifier.store.models import Delivery
from notifier.store.repo import AttemptRow, EventRow

# A claimed delivery: an ORM object (SMS) or a plain row (push); the record reads the same
# columns of either.
Claimed = TypeVar("Claimed", Delivery, PushDelivery)


@dataclass
class Recorded(Generic[Claimed]):
    retries: list[tuple[uuid.UUID, float]] = field(default_factory=list)
    sent: list[Claimed] = field(default_factory=list)
    failed: list[Claimed] = field(default_factory=list)
    # Messages with a delivery that left flight (failed, expired): only these can have a next
    # step now. A push that went out changes no decision (sending and sent are both in
    # flight); its receipt check or ack advances the message.
    settled: set[uuid.UUID] = field(default_factory=set)
    invalid_devices: dict[uuid.UUID, str] = field(default_factory=dict)


def _label(outcome: Outcome) -> str:
    return _label_of(outcome.status_code, outcome.error_code, outcome.detail)


@lru_cache(maxsize=1024)
def _label_of(status_code: int | None, error_code: str | None, detail: str | None) -> str:
    # Cached: a batch of hundreds of answers holds a handful of distinct ones ("200").
    return " ".join(str(x) for x in (status_code, error_code, detail) if x)


def _attempt_row(delivery: Claimed, outcome: Outcome) -> AttemptRow:
    return AttemptRow(
        delivery.id,
        delivery.attempts,
        outcome.kind.value,
        outcome.status_code,
        outcome.error_code,
        outcome.detail,
        outcome.provider_ref,
    )


def record_outcomes(
    session: Session,
    claimed: Sequence[Claimed],
    outcomes: Sequence[Outcome],
    success_state: str,
) -> Recorded[Claimed]:
    """Apply one outcome per claimed (state `sending`) delivery, all in the caller's transaction.

    A row that an ack or a report already moved on keeps its newer state (set_outcomes writes
    only the rows still `sending`, as locked); the rest are written in one batched statement.
    """
    now = repo.utcnow()
    pairs = list(zip(claimed, outcomes, strict=True))
    counts: Counter[tuple[str, str, str, str]] = Counter(
        (d.channel, d.platform or "carrier", o.kind.value, o.error_code or "-") for d, o in pairs
    )
    for labels, n in counts.items():  # one metric update per kind of answer, not per delivery
        OUTCOMES.labels(*labels).inc(n)
    result, events, rows = _recorded(pairs, success_state, now)
    written = repo.set_outcomes(session, rows)
    if len(written) < len(rows):  # rare: what was moved on first is not this record's to tell
        kept = [(d, o) for d, o in pairs if d.id in written]
        result, events, _ = _recorded(kept, success_state, now)
    repo.invalidate_devices(session, result.invalid_devices)
    repo.add_attempts_and_events(session, [_attempt_row(d, o) for d, o in pairs], events, now)
    return result


def _recorded(
    pairs: Sequence[tuple[Claimed, Outcome]], success_state: str, now: datetime
) -> tuple[Recorded[Claimed], list[EventRow], list[dict[str, Any]]]:
    """What recording these outcomes writes: the result, the events and the new row values."""
    result: Recorded[Claimed] = Recorded()
    events: list[EventRow] = []
    rows = [_row(d, o, success_state, now, result, events) for d, o in pairs]
    return result, events, rows


def _row(
    delivery: Claimed,
    outcome: Outcome,
    success_state: str,
    now: datetime,
    result: Recorded[Claimed],
    events: list[EventRow],
) -> dict[str, Any]:
    """The new values of one delivery; notes the outcome in `result` and `events`."""
    settings = get_settings()
    kind = outcome.kind
    if kind is Kind.RETRY and delivery.attempts >= settings.max_attempts * (delivery.replays + 1):
        kind = Kind.REJECTED  # out of attempts: a dead letter, replayable later
    row: dict[str, Any] = {
        "id": delivery.id,
        "error_code": outcome.error_code,
        "error_detail": outcome.detail,
        "provider_ref": None,
        "next_attempt_at": None,
    }
    detail: str | None = None
    if kind is Kind.SENT:
        row["state"], event = success_state, f"{delivery.channel}_{success_state}"
        row["provider_ref"] = outcome.provider_ref
        result.sent.append(delivery)
    elif kind is Kind.RETRY:
        delay = backoff_seconds(
            delivery.attempts,
            settings.retry_base_seconds,
            settings.retry_cap_seconds,
            outcome.retry_after,
        )
        row["state"], event = states.QUEUED, "retry_scheduled"
        detail = f"in {delay:.1f}s after {_label(outcome)}"
        row["next_attempt_at"] = now + timedelta(seconds=delay)
        result.retries.append((delivery.id, delay))
    elif kind is Kind.EXPIRED:
        row["state"], event = states.EXPIRED, f"{delivery.channel}_expired"
        result.failed.append(delivery)
    else:
        row["state"], event = states.FAILED, f"{delivery.channel}_failed"
        result.failed.append(delivery)
        if kind is Kind.INVALID_TARGET and delivery.device_id is not None:
            result.invalid_devices[delivery.device_id] = outcome.error_code or "invalid"
            events.append(EventRow(delivery.message_id, "device_invalidated", outcome.error_code))
    if row["state"] not in states.IN_FLIGHT:
        result.settled.add(delivery.message_id)
    events.append(EventRow(delivery.message_id, event, detail or _label(outcome), delivery.id))
    return row
