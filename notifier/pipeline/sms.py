"""SMS stage: claim queued SMS deliveries, apply the carrier rules, submit, record.

Before an SMS costs money it must still be allowed: message not expired, template and
signature still approved, text within the part limit, the number not opted out of promotions
and not in its quiet hours, and the number under its frequency limits. The frequency check and
the reservation of a slot happen under a per-number lock, so parallel workers cannot overshoot.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy.orm import Session

from config.settings import get_settings
from notifier import catalog
from notifier.domain import frequency, states
from notifier.domain.errors import InvalidInput
from notifier.domain.outcomes import EXPIRED, Outcome
from notifier.domain.policy import MessageClass
from notifier.domain.quiet_hours import parse_window, quiet_until
from notifier.metrics import PROVIDER_SECONDS, SMS_COST, SMS_PARTS
from notifier.pipeline import batching, publish
from notifier.pipeline.advance import advance_messages
from notifier.pipeline.record import Recorded, record_outcomes
from notifier.providers.carrier import CarrierClient, SmsSubmit, process_carrier
from notifier.store import claims, repo
from notifier.store import sms as sms_store
from notifier.store.db import in_transaction_until, transaction
from notifier.store.models import Delivery, Message
from notifier.store.repo import EventRow


@dataclass(frozen=True)
class Deferred:
    until: datetime
    reason: str


@dataclass(frozen=True)
class Limited:
    window: str


Decision = SmsSubmit | Outcome | Deferred | Limited


def _limits() -> frequency.Limits:
    s = get_settings()
    return frequency.Limits(
        s.sms_limit_verification_minute,
        s.sms_limit_verification_hour,
        s.sms_limit_verification_day,
        s.sms_limit_other_day,
    )


def _check(
    session: Session, delivery: Delivery, message: Message, now: datetime, batch: _Batch
) -> Decision | catalog.Composed:
    """Every rule of one SMS but the frequency limits; runs inside the claim transaction.
    Returns the composed SMS when only the limits are left to check."""
    if message.expires_at <= now:
        return EXPIRED
    template_key, signature_key = f"t:{message.sms_template}", f"s:{message.sms_signature}"
    if template_key not in batch.seen:
        batch.seen[template_key] = repo.get_template(session, message.sms_template or "")
    if signature_key not in batch.seen:
        batch.seen[signature_key] = repo.get_signature(session, message.sms_signature or "")
    template_row, signature_row = batch.seen[template_key], batch.seen[signature_key]
    if template_row is None or signature_row is None:
        return Outcome.rejected(None, "catalogue_missing", "template or signature was deleted")
    try:
        sms = catalog.compose(
            catalog.to_template(template_row),
            catalog.to_signature(signature_row),
            message.sms_params,
            delivery.target,
        )
    except InvalidInput as exc:
        return Outcome.rejected(None, "catalogue_rule", str(exc))
    # Stored with the claim: what was (about to be) sent and what it costs.
    delivery.sms_text, delivery.sms_encoding = sms.text, sms.segments.encoding
    delivery.sms_parts, delivery.sms_cost = sms.segments.count, sms.cost
    if sms.template.kind == "promotional":
        if delivery.target in batch.opted_out(session):
            return Outcome.rejected(None, "opted_out", "the number replied STOP or was opted out")
        until = quiet_until(delivery.target, now, parse_window(get_settings().sms_quiet_hours))
        if until is not None:
            return Deferred(until, "quiet hours at the recipient")
    return sms


@dataclass
class _Batch:
    """What one claim's decisions share: catalogue rows read once, opt-outs looked up once."""

    targets: list[str]
    seen: dict[str, Any] = field(default_factory=dict)
    _opted_out: set[str] | None = None

    def opted_out(self, session: Session) -> set[str]:
        if self._opted_out is None:
            self._opted_out = sms_store.opted_out(session, self.targets)
        return self._opted_out


def _decide(
    session: Session, claimed: Sequence[Delivery], messages: dict[uuid.UUID, Message], now: datetime
) -> dict[uuid.UUID, Decision]:
    """The decision for each claimed SMS. The frequency limits are checked and a slot reserved
    under the numbers' locks, for the whole batch in a few statements: the batch's own SMS
    count against each other (oldest first), and a retry is not limited by its own slot."""
    batch = _Batch([d.target for d in claimed])
    decisions: dict[uuid.UUID, Decision] = {}
    composed: list[tuple[Delivery, catalog.Composed]] = []
    for d in claimed:
        checked = _check(session, d, messages[d.message_id], now, batch)
        if isinstance(checked, catalog.Composed):
            composed.append((d, checked))
        else:
            decisions[d.id] = checked
    phones = sorted({d.target for d, _ in composed})
    sms_store.lock_numbers(session, phones)
    recent = sms_store.recent_sends(session, phones, now - timedelta(hours=24))
    reserve: list[dict[str, Any]] = []
    limits = _limits()
    for d, sms in composed:
        counted = recent[d.target]
        past = [r.send for r in counted if r.delivery_id != d.id]
        kind, sign = sms.template.kind, sms.signature.name
        window = frequency.window_hit(kind, sign, now, past, limits)
        if window is not None:
            decisions[d.id] = Limited(window)
            continue
        if all(r.delivery_id != d.id for r in counted):  # a retry keeps its one slot
            counted.append(sms_store.Reserved(frequency.PastSend(sign, kind, now), d.id))
            reserve.append(
                {"phone": d.target, "signature": sign, "template_code": sms.template.code,
                 "kind": kind, "delivery_id": d.id}
            )  # fmt: skip
        decisions[d.id] = SmsSubmit(d.target, sign, sms.template.code, sms.params, str(d.id))
    sms_store.reserve_sends(session, reserve)
    return decisions


def _earlier_attempt(carrier: CarrierClient, delivery: Delivery) -> Outcome | None:
    """What became of an earlier attempt without a clear answer: carriers have no idempotency
    key, so it may have gone through unseen. None when the carrier has no record of it."""
    try:
        biz_id = carrier.find_by_out_id(str(delivery.id))
    except Exception as exc:  # cannot tell what happened: do not risk a second SMS now
        return Outcome.retry(None, "status_query", str(exc))
    return Outcome.sent(None, biz_id) if biz_id else None


def _submit_all(
    carrier: CarrierClient, to_send: Sequence[Delivery], decisions: dict[uuid.UUID, Decision]
) -> list[Outcome]:
    """Submit as one batch with many requests in flight (the carrier's latency would otherwise
    serialise it). A resend first asks the carrier about its earlier attempt (on the client's
    threads; rare: only after an unclear answer) and goes only if the carrier has none."""
    outcomes = {d.id: o for d in to_send if isinstance(o := decisions[d.id], Outcome)}
    again = [d for d in to_send if d.id not in outcomes and d.attempts > 1]
    with PROVIDER_SECONDS.labels("sms").time():
        found = carrier.map(lambda d: _earlier_attempt(carrier, d), again)
        outcomes.update((d.id, o) for d, o in zip(again, found, strict=True) if o is not None)
        fresh = [d for d in to_send if d.id not in outcomes]
        answers = carrier.submit_all([cast(SmsSubmit, decisions[d.id]) for d in fresh])
    outcomes.update(zip([d.id for d in fresh], answers, strict=True))
    return [outcomes[d.id] for d in to_send]


def _hold(
    session: Session, decisions: dict[uuid.UUID, Decision], claimed: Sequence[Delivery]
) -> list[tuple[uuid.UUID, float]]:
    """Apply deferrals (quiet hours) and rate limits; returns deferred ids with their delay."""
    now = repo.utcnow()
    deferred: list[tuple[uuid.UUID, float]] = []
    events: list[EventRow] = []
    for d in claimed:
        decision = decisions[d.id]
        if isinstance(decision, Limited):
            moved = repo.transition(
                session,
                [d.id],
                states.SENDING,
                states.RATE_LIMITED,
                error_code="rate_limited",
                error_detail=decision.window,
            )
            if moved:
                events.append(EventRow(d.message_id, "sms_rate_limited", decision.window, d.id))
            continue
        if not isinstance(decision, Deferred):
            continue
        # Not an attempt: give the counted attempt back and wait for the window to end.
        moved = repo.transition(
            session,
            [d.id],
            states.SENDING,
            states.QUEUED,
            attempts=d.attempts - 1,
            next_attempt_at=decision.until,
        )
        if moved:
            deferred.append((d.id, (decision.until - now).total_seconds()))
            detail = f"{decision.reason} until {decision.until.isoformat()}"
            events.append(EventRow(d.message_id, "sms_deferred", detail, d.id))
    repo.add_events(session, events, now)
    return deferred


def send_sms(
    delivery_ids: Sequence[uuid.UUID], carrier: CarrierClient | None = None, lane: str | None = None
) -> int:
    """Submit a batch of SMS deliveries; returns how many this call claimed. `lane`: the queue
    the task came from; a transactional one tops the batch up (pipeline.batching)."""
    carrier = carrier or process_carrier()
    now = repo.utcnow()
    # Record within most of the lease: past it the sweep may re-queue what was submitted.
    record_by = time.monotonic() + 0.8 * get_settings().sending_lease_seconds
    top_up = batching.top_up(lane)
    with transaction() as session:
        claimed, messages = claims.claim_queued(session, delivery_ids, top_up)
        decisions = _decide(session, claimed, messages, now)
    if not claimed:
        return 0
    batching.count_topped_up(top_up, delivery_ids, [d.id for d in claimed])
    to_send = [d for d in claimed if isinstance(decisions[d.id], SmsSubmit | Outcome)]
    outcomes = _submit_all(carrier, to_send, decisions)

    def record(session: Session) -> tuple[Recorded[Delivery], list[tuple[uuid.UUID, float]]]:
        result = record_outcomes(session, to_send, outcomes, states.SUBMITTED)
        sms_store.release_sends(session, [d.id for d in result.failed])
        return result, _hold(session, decisions, claimed)

    result, deferred = in_transaction_until(record, record_by)
    for d in result.sent:
        template = messages[d.message_id].sms_template or "-"
        SMS_PARTS.labels(template).inc(d.sms_parts or 0)
        SMS_COST.labels(template).inc(float(d.sms_cost or 0))
    bulk = {d.id: MessageClass(messages[d.message_id].message_class).bulk for d in claimed}
    for delivery_id, delay in [*result.retries, *deferred]:
        if delay <= get_settings().max_countdown_seconds:
            publish.sms([delivery_id], countdown=delay, bulk=bulk[delivery_id])
        # a longer wait is left to the sweep, which re-publishes once next_attempt_at passes
    # Only what left flight can change a decision (see Recorded.settled); a rate-limited SMS
    # ended; a submitted security notice releases the device it is about.
    settled = result.settled | {
        d.message_id
        for d in claimed
        if isinstance(decisions[d.id], Limited) or messages[d.message_id].about_device is not None
    }
    advance_messages(sorted(settled))
    return len(claimed)
