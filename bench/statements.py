"""What each SQL statement of a stage costs the database: `python -m bench.stages --statements`.

The stage harness reads the server's CPU per stage; this splits it by statement. Around each
statement this process runs (psycopg's `Cursor.execute`, a COPY from its start to its end,
`Connection.commit`) it reads the serving backend's CPU from /proc/<pid>/schedstat, which
counts nanoseconds, so a statement of a millisecond is measured, not sampled. The server must
run on this machine. It also reads the WAL each stage wrote, by record type (pg_walinspect,
PostgreSQL 15): the heap records count the row versions a stage writes, Btree/INSERT_LEAF the
index entries they get (on this box each entry costs the server ~2.5-3 µs).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.sql import Composable
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from notifier.store.db import get_engine

# Enough of a statement to tell it from the others a stage runs (they share their openings:
# "WITH in_order AS MATERIALIZED (SELECT ..."), not the whole text.
SHOWN = 150


def backend_cpu(pid: int) -> float:
    """CPU seconds the process has run, to the nanosecond (schedstat's first field)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def _label(query: Any) -> str:
    spelled = query if isinstance(query, str) else str(getattr(query, "_obj", query))
    return re.sub(r"\s+", " ", spelled).strip()


@dataclass
class _Cost:
    runs: int = 0
    seconds: float = 0.0


@dataclass
class StatementCosts:
    """Backend CPU by stage and statement, while `installed()`; `stage` names where the
    statements run now count."""

    stage: str = "setup"
    costs: dict[str, dict[str, _Cost]] = field(default_factory=lambda: defaultdict(dict))
    # stage -> WAL record type ("Btree/INSERT_LEAF") -> (records, bytes)
    wal: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)

    def add(self, label: str, seconds: float) -> None:
        cost = self.costs[self.stage].setdefault(label, _Cost())
        cost.runs += 1
        cost.seconds += seconds

    def _timed(self, pid: int, label: str, run: Callable[[], Any]) -> Any:
        before = backend_cpu(pid)
        try:
            return run()
        finally:
            self.add(label, backend_cpu(pid) - before)

    @contextmanager
    def installed(self) -> Iterator[StatementCosts]:
        """Measure every statement this process runs until the block ends."""
        execute, commit, copy = (
            psycopg.Cursor.execute,
            psycopg.Connection.commit,
            psycopg.Cursor.copy,
        )
        costs = self

        def timed_execute(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            pid = cursor.connection.info.backend_pid
            return costs._timed(pid, _label(query), lambda: execute(cursor, query, *args, **kwargs))

        def timed_commit(connection: Any) -> None:
            costs._timed(connection.info.backend_pid, "COMMIT", lambda: commit(connection))

        @contextmanager
        def timed_copy(cursor: Any, statement: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            pid = cursor.connection.info.backend_pid
            before = backend_cpu(pid)
            try:
                with copy(cursor, statement, *args, **kwargs) as stream:
                    yield stream
            finally:
                spelled = (
                    statement.as_string(cursor) if isinstance(statement, Composable) else statement
                )
                costs.add(_label(spelled), backend_cpu(pid) - before)

        psycopg.Cursor.execute = timed_execute  # type: ignore[method-assign,assignment]
        psycopg.Connection.commit = timed_commit  # type: ignore[method-assign,assignment]
        psycopg.Cursor.copy = timed_copy  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            psycopg.Cursor.execute = execute  # type: ignore[method-assign]
            psycopg.Connection.commit = commit  # type: ignore[method-assign]
            psycopg.Cursor.copy = copy  # type: ignore[method-assign]

    @contextmanager
    def stage_of(self, name: str) -> Iterator[None]:
        """Count what runs in the block under `name` (adding up over rounds), with the WAL
        written meanwhile by record type."""
        start = _wal_position()
        self.stage = name
        try:
            yield
        finally:
            self.stage = "between"
            wal = self.wal.setdefault(name, {})
            for kind, records, size in _wal_between(start, _wal_position()):
                was = wal.get(kind, (0, 0))
                wal[kind] = (was[0] + records, was[1] + size)

    def table(self, deliveries: int) -> str:
        """Per stage: each statement's runs and backend µs per delivery, costliest first,
        and the stage's WAL records and bytes per delivery."""
        lines = ["| stage | statement | runs | database µs per delivery |", "|---|---|---|---|"]
        for stage, by_label in self.costs.items():
            if stage not in self.wal:
                continue
            ranked = sorted(by_label.items(), key=lambda kv: -kv[1].seconds)
            for label, cost in ranked:
                per = cost.seconds / deliveries * 1e6
                if per >= 0.05:
                    lines.append(f"| {stage} | `{label[:SHOWN]}` | {cost.runs} | {per:.1f} |")
            wal = self.wal[stage]
            records = sum(r for r, _ in wal.values())
            size = sum(b for _, b in wal.values())
            kinds = sorted(wal.items(), key=lambda kv: -kv[1][0])
            spelled = ", ".join(f"{k} {r / deliveries:.1f}" for k, (r, _) in kinds[:6])
            lines.append(
                f"| {stage} | WAL per delivery: {records / deliveries:.1f} records "
                f"({spelled}), {size / deliveries:,.0f} bytes | | |"
            )
        return "\n".join(lines)


def _wal_position() -> str:
    with get_engine().connect() as conn:
        return str(conn.execute(text("SELECT pg_current_wal_lsn()")).scalar_one())


def _wal_between(start: str, end: str) -> list[tuple[str, int, int]]:
    """(record type, records, bytes) of the WAL between two positions, by pg_walinspect
    (PostgreSQL 15; the extension is created if it is not there, which needs a superuser:
    without it there is one row, its type saying why, and the bytes between the positions).
    Nothing else should write while a stage runs: the server's WAL is everyone's."""
    query = (
        'SELECT "resource_manager/record_type", count, combined_size'
        " FROM pg_get_wal_stats(CAST(:start AS pg_lsn), CAST(:end AS pg_lsn), true)"
        " WHERE count > 0"
    )
    span = {"start": start, "end": end}
    try:
        with get_engine().begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_walinspect"))
            rows = conn.execute(text(query), span).all()
    except DBAPIError as error:
        with get_engine().connect() as conn:
            size = conn.execute(
                text("SELECT pg_wal_lsn_diff(CAST(:end AS pg_lsn), CAST(:start AS pg_lsn))"), span
            ).scalar_one()
        reason = str(error.orig).splitlines()[0] if error.orig else "unreadable"
        return [(f"(by type: {reason})", 0, int(size))]
    return [(str(kind), int(n), int(size)) for kind, n, size in rows]
