"""A niced worker's nice, carried to its Linux autogroup so that it takes effect.

The Procfile runs the bulk lanes under `nice -n 10` so that one-time codes get the CPU first.
But where the kernel groups processes by session (CONFIG_SCHED_AUTOGROUP, on by default in
most distributions' kernels, and on this project's machines), the scheduler first shares the
CPU fairly between sessions and applies a process's nice only among the processes of its own
session. A bulk worker in a session of its own (a process manager's child, the demo's
workers) then got as much CPU as a transactional worker, its nice notwithstanding. The
session's share follows the nice written to /proc/self/autogroup, which a process may raise
for its own session; this module writes the process's nice there at worker start.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

AUTOGROUP = Path("/proc/self/autogroup")
_NICE = re.compile(r"nice\s+(-?\d+)")


def carry_nice(path: Path = AUTOGROUP) -> int | None:
    """Raise this session's autogroup nice to this process's nice; returns the nice written,
    or None when there was nothing to do (not niced, no autogroup here, the group already as
    nice) or the kernel refused (logged: the worker runs on, only less polite)."""
    nice = os.nice(0)
    if nice <= 0:
        return None
    try:
        found = _NICE.search(path.read_text())
        if found is None or int(found.group(1)) >= nice:
            return None
        path.write_text(str(nice))
    except FileNotFoundError:
        return None  # a kernel without autogroups: nice works as it says
    except OSError as error:
        log.warning("nice %d not carried to the session's autogroup (%s): this worker "
                    "competes with other sessions at full weight", nice, error)  # fmt: skip
        return None
    log.info("nice %d carried to the session's autogroup: the whole session yields", nice)
    return nice
