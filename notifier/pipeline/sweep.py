"""The maintenance sweep (run by beat): the safety net under publish-after-commit and countdowns.

- queued deliveries nobody picked up for a while: committed but never published (a crash or
  broker outage between commit and publish), or a lost publish of a retry or fallback; on a
  bulk lane only once its queue has drained (a broadcast's backlog still reaches the rest);
- receipt deadlines that passed without a check having run (deadline beyond the countdown cap,
  or the check's task was lost);
- messages whose deliveries all ended but which were never finished (the advance after the
  last ack or report was lost, e.g. the database went away at that moment);
- SMS submitted long ago without a delivery report: the carrier is asked (polling);
- broadcasts whose fan-out stalled (its task lost): the fan-out is published again;
- deliveries stuck in `sending` past the lease: their worker died mid-call, so they go back to
  the queue (an SMS is then looked up at the carrier before any resend).
Re-publishing is always safe: a task that finds nothing to claim does nothing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select, text
from sqlalchemy.orm import Session

from config.settings import get_settings
from notifier.domain import states
from notifier.domain.policy import MessageClass, lane
from notifier.pipeline import publish
from notifier.pipeline.advance import advance_messages
from notifier.queue_depth import depths_if_known
from notifier.store import repo
from notifier.store import sms as sms_store
from notifier.store.db import is_postgres, transaction
from notifier.store.models import Broadcast, Delivery, Message
from notifier.store.repo import EventRow
from notifier.store.sql import in_states

log = logging.getLogger(__name__)

BATCH = 500
CHANNELS = (states.PUSH, states.SMS)
# Accepted messages a sweep looks at for a lost finish, at most. Each costs a look at its
# deliveries, a random read of a table that outgrows the cache under a million-recipient
# broadcast: 5,000 took ~30-50 ms on an idle database and ~0.7 s during the bench's million
# run. So the walk over a million accepted messages takes ~1,000 sweeps (~80 minutes at the
# default interval); with no broadcast running, a few sweeps. A lost finish is rare (a
# crash between an ack's commit and its advance) and leaves only the message's label behind.
UNFINISHED_SCAN = 1000
_server_checked = False
_unfinished_after: repo.Position | None = None  # where this process's walk goes on


@dataclass(frozen=True)
class SweepResult:
    republished_deliveries: int
    overdue_messages: int
    polled_sms: int
    reclaimed: int


def _jobs(where: ColumnElement[bool]) -> Select[uuid.UUID, str, uuid.UUID, str]:
    """Deliveries matching `where`, with what publishing them needs (channel and lane)."""
    return (
        select(Delivery.id, Delivery.channel, Delivery.message_id, Message.message_class)
        .join(Message, Message.id == Delivery.message_id)
        .where(where)
        .limit(BATCH)
    )


def _job(row: Any) -> publish.Job:
    return publish.Job(row.id, row.channel, MessageClass(row.message_class).bulk)


def _reclaim(now: datetime) -> list[publish.Job]:
    """Re-queue deliveries whose claim outlived the lease; returns those moved."""
    lease = timedelta(seconds=get_settings().sending_lease_seconds)
    with transaction() as session:
        stuck = session.execute(
            _jobs(
                and_(in_states(Delivery.state, [states.SENDING]), Delivery.updated_at < now - lease)
            )
        ).all()
        repo.lock_deliveries(session, [s.id for s in stuck])
        moved = set(repo.transition(session, [s.id for s in stuck], states.SENDING, states.QUEUED))
        repo.add_events(
            session,
            [
                EventRow(s.message_id, "lease_expired", "worker died mid-send; re-queued", s.id)
                for s in stuck
                if s.id in moved
            ],
        )
    return [_job(s) for s in stuck if s.id in moved]


def _stale(cutoff: datetime, lane: str) -> ColumnElement[bool]:
    """Queued deliveries of `lane` nobody touched since `cutoff` (nor due for a retry before
    it). By lane, so the lookup walks that lane's queued rows (ix_deliveries_lane_queued),
    oldest first: by state alone it walked every queued row of a running broadcast to find
    none of a transactional lane (~70 ms a sweep with a million queued)."""
    return and_(
        Delivery.lane == lane,
        in_states(Delivery.state, [states.QUEUED]),  # written out: the partial index matches
        Delivery.created_at < cutoff,  # never after updated_at: bounds the index range
        Delivery.updated_at < cutoff,
        or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at < cutoff),
    )


def _lanes_to_check() -> list[str]:
    """Which lanes' stale deliveries to re-publish. Transactional ones always, and first, so a
    campaign's backlog never hides a lost one-time code from the sweep's batch. A bulk lane
    only while its queue is empty: a million-recipient broadcast keeps deliveries queued for
    minutes behind tasks that will still reach them, and re-publishing those would only add
    duplicate tasks and row writes to the backlog. Once the queue drains, what is still queued
    was lost and goes out again."""
    lanes = [lane(channel, bulk=False) for channel in CHANNELS]
    # Unknown depths (no Redis, or the broker away: its publish would fail too): try as before.
    bulk_lanes = [lane(channel, bulk=True) for channel in CHANNELS]
    depths = depths_if_known(bulk_lanes) or {}
    return lanes + [name for name in bulk_lanes if not depths.get(name)]


def _unfinished(session: Session, cutoff: datetime) -> list[uuid.UUID]:
    """The next stretch of the walk over accepted messages for ones never finished."""
    global _unfinished_after
    found, _unfinished_after = repo.unfinished_messages(
        session, cutoff, BATCH, _unfinished_after, UNFINISHED_SCAN
    )
    return found


def _stalled_broadcasts(cutoff: datetime) -> list[uuid.UUID]:
    """Fan-outs nobody advanced for a while (publish lost, worker gone): started again; the
    cursor makes a second runner harmless."""
    with transaction() as session:
        return list(
            session.scalars(
                select(Broadcast.id).where(
                    Broadcast.state == "fanning_out", Broadcast.updated_at < cutoff
                )
            )
        )


def _check_server() -> None:
    """Once per process: say loudly when PostgreSQL will not vacuum notifier's tables."""
    global _server_checked
    if _server_checked:
        return
    _server_checked = True
    with transaction() as session:
        if is_postgres(session) and session.execute(text("SHOW autovacuum")).scalar() == "off":
            log.warning(
                "autovacuum is off on this PostgreSQL server: every send, ack and retry "
                "updates rows, and without vacuum their dead versions pile up and slow every "
                "query down over hours; turn it on (or run VACUUM ANALYZE on a schedule)"
            )


def sweep(stale_after: float | None = None) -> SweepResult:
    _check_server()
    now = repo.utcnow()
    if stale_after is None:
        stale_after = get_settings().republish_after_seconds
    cutoff = now - timedelta(seconds=stale_after)
    reclaimed = _reclaim(now)
    with transaction() as session:
        stale = [
            _job(row)
            for name in _lanes_to_check()
            for row in session.execute(_jobs(_stale(cutoff, name)))
        ]
        # Marked before they are published, not after: a task taking them at once then never
        # waits for this mark's row locks. (If the publish fails, they are stale again after
        # an interval.) The re-queued by the lease were marked by their move.
        repo.touch(session, [job.id for job in stale], states.QUEUED)
        overdue = repo.overdue_messages(session, now, BATCH)
        overdue += _unfinished(session, cutoff)
        poll_after = timedelta(seconds=get_settings().sms_poll_after_seconds)
        unreported = sms_store.awaiting_report(session, now - poll_after, BATCH)
        repo.touch(session, unreported)
    todo = {*stale, *reclaimed}
    publish.deliveries(todo)
    advance_messages(overdue, now)
    for broadcast_id in _stalled_broadcasts(cutoff):
        publish.fanout(broadcast_id)
    publish.sms_poll(unreported)
    return SweepResult(len(todo), len(overdue), len(unreported), len(reclaimed))
