"""The maintenance sweep (run by beat): the safety net under publish-after-commit and countdowns.

- messages committed but never published (crash or broker outage between commit and publish);
- queued deliveries nobody picked up for a while (a lost publish of a retry or fallback);
- receipt deadlines that passed without a check having run (deadline beyond the countdown cap,
  or the check's task was lost);
- SMS submitted long ago without a delivery report: the carrier is asked (polling);
- deliveries stuck in `sending` past the lease: their worker died mid-call, so they go back to
  the queue (an SMS is then looked up at the carrier before any resend).
Re-publishing is always safe: a task that finds nothing to claim does nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from config.settings import get_settings
from notifier.domain import states
from notifier.pipeline import publish
from notifier.pipeline.advance import advance_messages
from notifier.store import repo
from notifier.store import sms as sms_store
from notifier.store.db import transaction
from notifier.store.models import Delivery
from notifier.store.repo import EventRow

BATCH = 500


@dataclass(frozen=True)
class SweepResult:
    republished_messages: int
    republished_deliveries: int
    overdue_messages: int
    polled_sms: int
    reclaimed: int


def _reclaim(now: datetime) -> list[tuple[uuid.UUID, str]]:
    """Re-queue deliveries whose claim outlived the lease; returns (id, channel) of those moved."""
    lease = timedelta(seconds=get_settings().sending_lease_seconds)
    with transaction() as session:
        stuck = session.execute(
            select(Delivery.id, Delivery.channel, Delivery.message_id)
            .where(Delivery.state == states.SENDING, Delivery.updated_at < now - lease)
            .limit(BATCH)
        ).all()
        moved = set(repo.transition(session, [s.id for s in stuck], states.SENDING, states.QUEUED))
        repo.add_events(
            session,
            [
                EventRow(s.message_id, "lease_expired", "worker died mid-send; re-queued", s.id)
                for s in stuck
                if s.id in moved
            ],
        )
    return [(s.id, s.channel) for s in stuck if s.id in moved]


def sweep(stale_after: float | None = None) -> SweepResult:
    now = repo.utcnow()
    if stale_after is None:
        stale_after = get_settings().republish_after_seconds
    cutoff = now - timedelta(seconds=stale_after)
    reclaimed = _reclaim(now)
    with transaction() as session:
        unpublished = repo.unpublished_messages(session, cutoff, BATCH)
        stale = [
            (row.id, row.channel)
            for row in session.execute(
                select(Delivery.id, Delivery.channel)
                .where(
                    Delivery.state == states.QUEUED,
                    Delivery.updated_at < cutoff,
                    or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at < cutoff),
                )
                .limit(BATCH)
            )
        ]
        unpublished_deliveries = [
            (d.id, d.channel)
            for d in repo.deliveries_of(session, unpublished)
            if d.state == states.QUEUED
        ]
        overdue = repo.overdue_messages(session, now, BATCH)
        poll_after = timedelta(seconds=get_settings().sms_poll_after_seconds)
        unreported = sms_store.awaiting_report(session, now - poll_after, BATCH)
        repo.touch(session, unreported)
    todo = {*stale, *unpublished_deliveries, *reclaimed}
    publish.push([i for i, ch in todo if ch == states.PUSH])
    publish.sms([i for i, ch in todo if ch == states.SMS])
    with transaction() as session:
        repo.mark_published(session, unpublished)
        repo.touch(session, [i for i, _ in todo], states.QUEUED)
    advance_messages(overdue, now)
    publish.sms_poll(unreported)
    return SweepResult(len(unpublished), len(todo), len(overdue), len(unreported), len(reclaimed))
