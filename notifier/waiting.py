"""Holding back in short steps while something says to, never longer than a cap: a bulk lane
giving way to transactional tasks (notifier.give_way), a broadcast's fan-out waiting for room
in its lane (pipeline.fanout)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_while(busy: Callable[[], bool], cap: float, step: float) -> tuple[float, bool]:
    """Sleep in steps of `step` while `busy()`, at most `cap` seconds. Returns the seconds
    slept (0.0 when `busy()` said no at once) and whether `busy()` said no before the cap ran
    out."""
    started = time.monotonic()
    waited = 0.0
    while waited < cap:
        if not busy():
            return waited, True
        time.sleep(min(step, cap - waited))
        waited = time.monotonic() - started
    return waited, False
