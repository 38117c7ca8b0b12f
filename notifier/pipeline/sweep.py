"""The maintenance sweep (run by beat): the safety net under publish-after-commit and countdowns.

- messages committed but never published (crash or broker outage between commit and publish);
- queued deliveries nobody picked up for a while (a lost publish of a retry or fallback);
- receipt deadlines that passed without a check having run (deadline beyond the countdown cap,
  or the check's task was lost);
- SMS submitted long ago without a delivery report: the carrier is asked (polling).
Re-publishing is always safe: a task that finds nothing to claim does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select

from config.settings import get_settings
from notifier.domain import states
from notifier.pipeline import publish
from notifier.pipeline.advance import advance_messages
from notifier.store import repo
from notifier.store import sms as sms_store
from notifier.store.db import transaction
from notifier.store.models import Delivery

BATCH = 500


@dataclass(frozen=True)
class SweepResult:
    republished_messages: int
    republished_deliveries: int
    overdue_messages: int
    polled_sms: int


def sweep(stale_after: float = 30.0) -> SweepResult:
    now = repo.utcnow()
    cutoff = now - timedelta(seconds=stale_after)
    with transaction() as session:
        unpublished = repo.unpublished_messages(session, cutoff, BATCH)
        stale = session.execute(
            select(Delivery.id, Delivery.channel)
            .where(
                Delivery.state == states.QUEUED,
                Delivery.updated_at < cutoff,
                or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at < cutoff),
            )
            .limit(BATCH)
        ).all()
        unpublished_deliveries = [
            (d.id, d.channel)
            for d in repo.deliveries_of(session, unpublished)
            if d.state == states.QUEUED
        ]
        overdue = repo.overdue_messages(session, now, BATCH)
        poll_after = timedelta(seconds=get_settings().sms_poll_after_seconds)
        unreported = sms_store.awaiting_report(session, now - poll_after, BATCH)
        sms_store.touch(session, unreported)
    todo = {*stale, *unpublished_deliveries}
    publish.push([i for i, ch in todo if ch == states.PUSH])
    publish.sms([i for i, ch in todo if ch == states.SMS])
    with transaction() as session:
        repo.mark_published(session, unpublished)
        repo.touch_queued(session, [i for i, _ in todo])
    advance_messages(overdue, now)
    publish.sms_poll(unreported)
    return SweepResult(len(unpublished), len(todo), len(overdue), len(unreported))
