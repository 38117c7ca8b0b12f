"""A niced bulk worker's share of the CPU against other sessions: its Linux autogroup's nice.

The Procfile runs the bulk lanes under `nice -n 10` so that one-time codes get the CPU first.
But where the kernel groups processes by session (CONFIG_SCHED_AUTOGROUP, on by default in
most distributions' kernels, and on this project's machines), the scheduler first shares the
CPU fairly between sessions and applies a process's nice only among the processes of its own
session. A bulk worker in a session of its own (each Procfile process under honcho, the
demo's and the bench's workers) then got as much CPU as a transactional worker, its nice
notwithstanding.

A session's share follows the nice written to /proc/self/autogroup, which a process may set
for its own session to any value from 0 up. Held at the process's nice throughout, a
campaign alone on a box ran ~10 % slower in the bench (it yielded to the provider and the
database serving itself, and they then worked in smaller bursts). So a bulk lane writes its
nice there only while transactional work is about (notifier.transactional_seen), and 0 when
it is not: a campaign alone keeps the whole box, and one-time codes beside it get the CPU
first.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

AUTOGROUP = Path("/proc/self/autogroup")
_NICE = re.compile(r"nice\s+(-?\d+)")


class _Group:
    written: int | None = None  # the nice this process last wrote (None: not yet, or unknown)
    usable = True  # False once the file proved missing or refused: no more tries


def can_yield() -> bool:
    """Whether yield_share may write anything here: the process is niced and its autogroup
    has not proved missing or refused. Callers ask first, to spare reading what to yield to."""
    return os.nice(0) > 0 and _Group.usable


def yield_share(yielding: bool, path: Path = AUTOGROUP) -> int | None:
    """Set this session's autogroup nice to this process's nice (`yielding`) or to 0; returns
    the nice written, or None when nothing was written (not niced, already so, no autogroups
    on this kernel, or refused: logged once, the worker runs on at full weight)."""
    if not can_yield():
        return None
    wanted = os.nice(0) if yielding else 0
    if _Group.written == wanted:
        return None
    try:
        if _Group.written is None:
            found = _NICE.search(path.read_text())
            if found is not None and int(found.group(1)) == wanted:
                _Group.written = wanted
                return None
        path.write_text(str(wanted))
    except FileNotFoundError:
        _Group.usable = False  # a kernel without autogroups: nice works as it says
        return None
    except OSError as error:
        _Group.usable = False
        log.warning("this worker's session cannot set its autogroup's nice (%s): it competes "
                    "with other sessions at full weight", error)  # fmt: skip
        return None
    _Group.written = wanted
    return wanted


def forget() -> None:
    """For tests: nothing written yet, and the file worth trying."""
    _Group.written, _Group.usable = None, True
