"""How much one task sends: a task of a transactional lane tops its batch up from the lane.

Producers publish one task per message, so that a quiet lane sends each message the moment it
arrives. When those tasks back up, sending them one by one costs a claim, a record and a
task's overhead per message, and the backlog grows faster than it drains. Topping up turns
the first waiting task into a batch of the oldest ready deliveries; the tasks of what it took
find nothing left to claim (the claim is conditional) and end at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from config.settings import get_settings
from notifier.metrics import TOPPED_UP
from notifier.queue_depth import depths_if_known
from notifier.store.claims import TopUp


def top_up(lane: str | None, free: bool = False) -> TopUp | None:
    """The top-up for a task taken from `lane`; none on bulk lanes (their tasks are batches
    already), when NOTIFIER_TRANSACTIONAL_BATCH_MAX is 0, or while no task waits in the
    lane's queue. `free`: the claim takes its top-up in the same statement
    (claims.top_up_is_free), so it is always asked for and the queue is not looked at."""
    size = get_settings().transactional_batch_max
    if lane is None or lane.endswith("_bulk") or size <= 0:
        return None
    if not free and _nothing_waits(lane):
        return None
    return TopUp(lane, size)


def _nothing_waits(lane: str) -> bool:
    """No backlog to take: every queued delivery of the lane has its task taken or held by a
    worker (or a retry's countdown), which claims it. The lookup of ready rows is a statement
    on a transactional send's path, ~4 ms under a broadcast; the queue's depth is one Redis
    round trip. When the depth cannot be read, the top-up runs as before."""
    depths = depths_if_known([lane])
    return depths is not None and depths.get(lane, 0) == 0


def count_topped_up(
    top_up: TopUp | None, asked: Sequence[uuid.UUID], claimed: Sequence[uuid.UUID]
) -> None:
    if top_up is not None:
        own = set(asked)
        TOPPED_UP.labels(top_up.lane).inc(sum(1 for d in claimed if d not in own))
