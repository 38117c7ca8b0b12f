"""Record provider outcomes on claimed deliveries: state, attempt row, timeline, retry plan."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from config.settings import get_settings
from notifier.domain import states
from notifier.domain.outcomes import Kind, Outcome, backoff_seconds
from notifier.metrics import OUTCOMES
from notifier.store import repo
from notifier.store.models import Delivery
from notifier.store.repo import EventRow


@dataclass
class Recorded:
    retries: list[tuple[uuid.UUID, float]] = field(default_factory=list)
    sent: list[Delivery] = field(default_factory=list)
    failed: list[Delivery] = field(default_factory=list)
    messages: set[uuid.UUID] = field(default_factory=set)
    invalid_devices: dict[uuid.UUID, str] = field(default_factory=dict)


def _label(outcome: Outcome) -> str:
    return " ".join(str(x) for x in (outcome.status_code, outcome.error_code, outcome.detail) if x)


def _attempt_row(delivery: Delivery, outcome: Outcome) -> dict[str, Any]:
    return {
        "delivery_id": delivery.id,
        "number": delivery.attempts,
        "outcome": outcome.kind.value,
        "status_code": outcome.status_code,
        "error_code": outcome.error_code,
        "detail": outcome.detail,
        "provider_ref": outcome.provider_ref,
    }


def record_outcomes(
    session: Session,
    claimed: Sequence[Delivery],
    outcomes: Sequence[Outcome],
    success_state: str,
) -> Recorded:
    """Apply one outcome per claimed (state `sending`) delivery, all in the caller's transaction."""
    settings = get_settings()
    now = repo.utcnow()
    result = Recorded()
    repo.lock_deliveries(session, [d.id for d in claimed])
    events: list[EventRow] = []
    for delivery, outcome in zip(claimed, outcomes, strict=True):
        result.messages.add(delivery.message_id)
        kind = outcome.kind
        provider = delivery.platform or "carrier"
        OUTCOMES.labels(delivery.channel, provider, kind.value, outcome.error_code or "-").inc()
        if kind is Kind.RETRY and delivery.attempts >= settings.max_attempts * (
            delivery.replays + 1
        ):
            kind = Kind.REJECTED  # out of attempts: a dead letter, replayable later
        values: dict[str, Any] = {"error_code": outcome.error_code, "error_detail": outcome.detail}
        if kind is Kind.SENT:
            new_state, event, detail = success_state, f"{delivery.channel}_{success_state}", None
            values["provider_ref"] = outcome.provider_ref
        elif kind is Kind.RETRY:
            delay = backoff_seconds(
                delivery.attempts,
                settings.retry_base_seconds,
                settings.retry_cap_seconds,
                outcome.retry_after,
            )
            new_state, event = states.QUEUED, "retry_scheduled"
            detail = f"in {delay:.1f}s after {_label(outcome)}"
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        elif kind is Kind.EXPIRED:
            new_state, event, detail = states.EXPIRED, f"{delivery.channel}_expired", None
        else:
            new_state, event, detail = states.FAILED, f"{delivery.channel}_failed", None
        if not repo.transition(session, [delivery.id], states.SENDING, new_state, **values):
            continue  # someone else (an ack, a DLR) already moved it on
        events.append(EventRow(delivery.message_id, event, detail or _label(outcome), delivery.id))
        if kind is Kind.SENT:
            result.sent.append(delivery)
        elif kind is Kind.RETRY:
            result.retries.append((delivery.id, delay))
        else:
            result.failed.append(delivery)
            if kind is Kind.INVALID_TARGET and delivery.device_id is not None:
                result.invalid_devices[delivery.device_id] = outcome.error_code or "invalid"
                events.append(
                    EventRow(delivery.message_id, "device_invalidated", outcome.error_code)
                )
    repo.add_attempts(session, [_attempt_row(d, o) for d, o in zip(claimed, outcomes, strict=True)])
    repo.invalidate_devices(session, result.invalid_devices)
    repo.add_events(session, events, now)
    return result
