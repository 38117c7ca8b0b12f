"""A few rows into several tables in one statement (PostgreSQL): the last table's INSERT,
the others' as data-modifying CTEs. Foreign keys are checked at the end of the statement, so
a row may reference one written beside it.

For the writes on a one-time code's path (an accepted message; a transactional task's
attempts and events), where under a broadcast every round trip waits its turn for a CPU. The
statement is compiled once per shape (tables, columns, row counts) and run as text with its
columns' bind processors: SQLAlchemy does not cache the compiled form of an INSERT with DML
CTEs, and compiling it cost ~7 ms of CPU per send, more than the inserts it replaces.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect, Table, bindparam, insert
from sqlalchemy.orm import Session

# (table, rows): every row of a table has the same keys, the column keys of that table.
Rows = tuple[Table, Sequence[Mapping[str, Any]]]


def insert_together(session: Session, writes: Sequence[Rows]) -> None:
    """Insert each table's rows, all in one statement; tables without rows are left out."""
    writes = [(table, rows) for table, rows in writes if rows]
    if not writes:
        return
    values: dict[str, Any] = {}
    for t, (_, rows) in enumerate(writes):
        for i, row in enumerate(rows):
            values.update({f"t{t}r{i}_{k}": v for k, v in row.items()})
    shape = tuple((table, tuple(rows[0]), len(rows)) for table, rows in writes)
    connection = session.connection()
    sql, processors = _compiled(connection.dialect, shape)
    for name, process in processors.items():
        values[name] = process(values[name])
    connection.exec_driver_sql(sql, values)


@functools.lru_cache(maxsize=128)
def _compiled(
    dialect: Dialect, shape: tuple[tuple[Table, tuple[str, ...], int], ...]
) -> tuple[str, dict[str, Callable[[Any], Any]]]:
    """The statement's text for one shape, with the bind processors of its parameters (JSON
    to text, the UTC check of datetimes)."""
    kinds: dict[str, Any] = {}

    def rows(t: int, table: Table, keys: tuple[str, ...], count: int) -> list[dict[str, Any]]:
        out = []
        for i in range(count):
            names = {k: f"t{t}r{i}_{k}" for k in keys}
            kinds.update({names[k]: table.c[k].type for k in keys})
            out.append({k: bindparam(names[k], type_=table.c[k].type) for k in keys})
        return out

    *first, (last, last_keys, last_count) = shape
    stmt = insert(last).values(rows(len(first), last, last_keys, last_count))
    for t, (table, keys, count) in enumerate(first):
        stmt = stmt.add_cte(insert(table).values(rows(t, table, keys, count)).cte(f"w{t}"))
    processors = {
        name: process
        for name, kind in kinds.items()
        if (process := kind.dialect_impl(dialect).bind_processor(dialect)) is not None
    }
    return str(stmt.compile(dialect=dialect)), processors
