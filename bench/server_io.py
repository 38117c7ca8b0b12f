"""What the server did for its pages during a bench phase: WAL, checkpoints, buffers, reads.

The fan-out's chunk insert costs the database more CPU per recipient in T30 than in T0 with the
whole system running, and not when the stage runs alone (bench.stages). What an insert pays
for beyond its rows is the server's: full-page images after a checkpoint (the first change to
each page writes all 8 kB of it into the WAL), dirty buffers a backend must write itself to
make room when shared_buffers is full, pages read back from the kernel. These are counted
server-wide (PostgreSQL 15 has no per-backend split), so a phase's figures are the whole
system's, per delivery.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

# (view, counters): server-wide counters that only grow, except across a stats reset.
_SERVER = {
    "pg_stat_wal": ("wal_records", "wal_fpi", "wal_bytes", "wal_buffers_full"),
    "pg_stat_bgwriter": (
        "checkpoints_timed",
        "checkpoints_req",
        "buffers_checkpoint",
        "buffers_clean",
        "buffers_backend",
        "buffers_alloc",
    ),
}

# Blocks each relation (table or index) read from outside shared_buffers.
_READS = text(
    "SELECT relname, heap_blks_read FROM pg_statio_user_tables"
    " UNION ALL SELECT indexrelname, idx_blks_read FROM pg_statio_user_indexes"
)

Counters = dict[str, float]


def snapshot(conn: Any) -> tuple[Counters, Counters]:
    """The server's counters and each relation's blocks read, now."""
    server: Counters = {}
    for view, names in _SERVER.items():
        row = conn.execute(text(f"SELECT {', '.join(names)} FROM {view}")).one()
        server.update({name: float(v) for name, v in zip(names, row, strict=True)})
    reads = {str(name): float(v or 0) for name, v in conn.execute(_READS)}
    return server, reads


def spent(
    before: tuple[Counters, Counters], after: tuple[Counters, Counters], n: int
) -> tuple[str, str]:
    """Two log lines: the server's counters per delivery during the phase (checkpoints as
    counts), and the relations that read the most blocks from outside shared_buffers."""
    server = {k: v - before[0].get(k, 0.0) for k, v in after[0].items()}
    checkpoints = server.pop("checkpoints_timed") + server.pop("checkpoints_req")
    per = ", ".join(f"{k} {v / n:.3f}" for k, v in server.items())
    reads = {k: v - before[1].get(k, 0.0) for k, v in after[1].items()}
    top = sorted(reads.items(), key=lambda kv: -kv[1])[:6]
    shown = ", ".join(f"{k} {v / n:.3f}" for k, v in top if v > 0) or "none"
    return f"{checkpoints:.0f} checkpoints; per delivery: {per}", shown
