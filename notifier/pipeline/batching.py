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
from notifier.store.claims import TopUp


def top_up(lane: str | None) -> TopUp | None:
    """The top-up for a task taken from `lane`; none on bulk lanes (their tasks are batches
    already) or when NOTIFIER_TRANSACTIONAL_BATCH_MAX is 0."""
    size = get_settings().transactional_batch_max
    if lane is None or lane.endswith("_bulk") or size <= 0:
        return None
    return TopUp(lane, size)


def count_topped_up(
    top_up: TopUp | None, asked: Sequence[uuid.UUID], claimed: Sequence[uuid.UUID]
) -> None:
    if top_up is not None:
        own = set(asked)
        TOPPED_UP.labels(top_up.lane).inc(sum(1 for d in claimed if d not in own))
