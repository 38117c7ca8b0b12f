"""Publishing task messages. Only ids cross the broker; the database holds the rest."""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from config.settings import get_settings
from notifier.domain.policy import lane

log = logging.getLogger(__name__)


# Deliveries per task when re-publishing many at once (the sweep, a replay): a batch must be
# claimed, sent and recorded well within NOTIFIER_SENDING_LEASE_SECONDS.
MAX_BATCH = 100


@dataclass(frozen=True)
class Job:
    """One delivery to publish: its channel picks the task, its class the lane."""

    id: uuid.UUID
    channel: str
    bulk: bool = False


def _send(
    name: str,
    args: list[object],
    countdown: float | None = None,
    queue: str | None = None,
    argsrepr: str | None = None,
) -> bool:
    """Publish; on failure log and return False. The rows are committed already, and the
    maintenance sweep re-publishes anything that was never picked up, so nothing is lost.
    `argsrepr`: how logs and Flower show the arguments (Celery's own repr walks them)."""
    from config.celery_app import app_for

    try:
        app_for(get_settings()).send_task(
            name, args=args, countdown=countdown, queue=queue, argsrepr=argsrepr
        )
    except Exception:  # kombu raises many transport errors; all mean "not published"
        log.exception("publish of %s failed; the sweep will re-publish", name)
        return False
    return True


def ids_repr(ids: Sequence[str]) -> str:
    """A batch task's arguments as logs and Flower show them: its size and first ids. Celery's
    repr of a list of 1,000 ids walked it (~0.7 ms a batch) to show a cut-off kilobyte."""
    shown = ", ".join(repr(i) for i in ids[:2])
    more = f", … {len(ids)} ids" if len(ids) > 2 else ""
    return f"[[{shown}{more}]]"


def push(
    delivery_ids: Sequence[uuid.UUID | str], countdown: float | None = None, bulk: bool = False
) -> bool:
    from config.celery_app import PUSH_SEND

    ids = [str(i) for i in delivery_ids]
    queue = lane("push", bulk)
    return not ids or _send(PUSH_SEND, [ids], countdown, queue, ids_repr(ids))


def sms(
    delivery_ids: Sequence[uuid.UUID], countdown: float | None = None, bulk: bool = False
) -> bool:
    from config.celery_app import SMS_SEND

    ids = [str(i) for i in delivery_ids]
    return not ids or _send(SMS_SEND, [ids], countdown, lane("sms", bulk), ids_repr(ids))


def deliveries(jobs: Iterable[Job], countdown: float | None = None) -> bool:
    """Publish deliveries of any channel and class: one task per channel and lane."""
    groups: dict[tuple[str, bool], list[uuid.UUID]] = defaultdict(list)
    for job in jobs:
        groups[(job.channel, job.bulk)].append(job.id)
    ok = True
    for (channel, bulk), ids in groups.items():
        send = push if channel == "push" else sms
        for start in range(0, len(ids), MAX_BATCH):
            ok = send(ids[start : start + MAX_BATCH], countdown, bulk) and ok
    return ok


def fanout(broadcast_id: uuid.UUID) -> bool:
    from config.celery_app import BROADCAST_FANOUT

    return _send(BROADCAST_FANOUT, [str(broadcast_id)])


def sms_poll(delivery_ids: Sequence[uuid.UUID]) -> bool:
    from config.celery_app import SMS_POLL

    return not delivery_ids or _send(SMS_POLL, [[str(i) for i in delivery_ids]])


# Receipt deadlines are checked per time slot, not per message: one task at the end of each
# slot advances every message due by then (a set-based query), so 1,000 messages sent in a
# second cost a handful of checks. A fallback starts at most one slot late.
RECEIPT_SLOT_SECONDS = 0.1
# The deadline of a plan's last step starts nothing: it only labels a push still without a
# receipt `unconfirmed` (a broadcast, any push_only message). Its check may run up to a
# second late, and a broadcast's push batches then schedule one check a second, not ten.
LABEL_SLOT_SECONDS = 1.0
_scheduled_slots: dict[float, None] = {}  # slots this process already scheduled


def receipts_due(due_at: datetime, label_only: bool = False) -> bool:
    """Schedule the check of the slot `due_at` falls in, once per process and slot;
    `label_only`: nothing but the message's label waits on this deadline (LABEL_SLOT_SECONDS).

    Another process may schedule the same slot: harmless, the second check finds nothing.
    Slots further out than a countdown may safely be are left to the maintenance sweep.
    """
    from config.celery_app import RECEIPTS_DUE

    now = time.time()
    # A deadline already past gets the slot after now, never an earlier one: a check skips
    # slots its process covered already (advance_due), and this message was committed only
    # now, after any such check had read the database.
    due = max(due_at.timestamp(), now)
    size = LABEL_SLOT_SECONDS if label_only else RECEIPT_SLOT_SECONDS
    slot = math.ceil(due / size) * size
    if slot in _scheduled_slots or slot - now > get_settings().max_countdown_seconds:
        return True
    for old in [s for s in _scheduled_slots if s < now - 60]:
        del _scheduled_slots[old]
    at = datetime.fromtimestamp(slot, UTC)
    ok = _send(RECEIPTS_DUE, [at.isoformat()], max(slot - now, 0.0))
    if ok:
        _scheduled_slots[slot] = None
    return ok
