"""CPU time and peak memory of process trees, read from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import text

TICKS = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (and their reaped children)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime are fields 14-17 of stat (11-14 after the name).
        total += sum(int(f) for f in fields[11:15]) / TICKS
    return total


def box_ticks() -> tuple[int, int, int]:
    """The whole machine's (idle, stolen, all) CPU ticks so far, from /proc/stat: idle counts
    the time no core had work (idle and iowait), stolen the time the host ran something else
    while this machine had work. Read before and after a phase, their differences give the
    share of the box that phase left unused and the share the host took from it."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    return fields[3] + fields[4], fields[7], sum(fields[:8])


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def database_cpu(conn: Any) -> dict[str, float]:
    """CPU seconds of the PostgreSQL server's processes so far, by who they serve: a client
    connection by its application_name (notifier names its connections by process type),
    the server's own processes by type (walwriter, checkpointer, ...). The server must run
    on this machine (its processes are read from /proc); each connection of a pool counts
    from when it was opened, so a difference of two readings is the CPU spent between them
    (a connection closed in between drops out)."""
    rows = conn.execute(
        text(
            "SELECT pid, CASE WHEN backend_type = 'client backend' THEN application_name"
            " ELSE backend_type END FROM pg_stat_activity"
            " WHERE datname = current_database() OR datname IS NULL"
        )
    ).all()
    by_name: dict[str, float] = {}
    for pid, name in rows:
        key = name or "unnamed"
        by_name[key] = by_name.get(key, 0.0) + cpu_seconds([pid])
    return by_name
