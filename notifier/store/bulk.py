"""Many rows into PostgreSQL by binary COPY: what the fan-out and the outcome records write.

An executemany INSERT costs the client ~30 to 50 µs per row here (SQLAlchemy builds each row's
parameters, psycopg sends each as its own statement in a pipeline). COPY streams the rows as
one statement, and in its binary format psycopg's C dumpers write each row (`write_row`) for
well under a µs per row of five columns: no text to format and escape in Python (the text
format cost ~5 µs per such row, most of it str() of UUIDs and escaping).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from psycopg import sql
from sqlalchemy import Column, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

# Below this many rows a plain INSERT is as cheap: COPY has a fixed cost of its own.
COPY_FROM_ROWS = 8

# The type psycopg dumps a column's values as, by the column's PostgreSQL type (as
# SQLAlchemy spells it in DDL, without its length). Binary COPY hands each value to the
# column type's receive function, so the dumper must write exactly that type's binary form;
# varchar's is text's, and json's is its text (a json column's value is encoded here first).
_BINARY_TYPES = {
    "UUID": "uuid",
    "VARCHAR": "text",
    "TEXT": "text",
    "JSON": "text",
    "INTEGER": "int4",
    "BIGINT": "int8",
    "SMALLINT": "int2",
    "BOOLEAN": "bool",
    "NUMERIC": "numeric",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
}


def _defaults(table: Table, given: Sequence[str]) -> dict[str, Any]:
    """Client-side column defaults (`default=`) of columns the rows leave out: COPY, unlike
    SQLAlchemy's INSERT, knows only the server's own defaults."""
    return {
        column.name: column_default(column)
        for column in table.columns
        if column.name not in given and column.default is not None
    }


def column_default(column: Any) -> Any:
    """A column's client-side default value (`default=`), None when it has none."""
    default = column.default
    if getattr(default, "is_scalar", False):
        return getattr(default, "arg", None)
    if getattr(default, "is_callable", False):
        return default.arg(None)
    return None


def _spelled(column: Column[Any], dialect: Dialect) -> str:
    spelled = column.type.compile(dialect=dialect).split("(")[0].strip()
    if spelled not in _BINARY_TYPES:
        raise TypeError(f"bulk COPY cannot write column {column} of type {spelled}")
    return spelled


class _Memo:
    """Prepares one column's values (a json column's text, a datetime's zone check),
    remembering the last value by identity: the rows of a chunk share many values (its
    timestamp, a broadcast's payload), which are then prepared once per chunk."""

    __slots__ = ("last", "prepare", "prepared")

    def __init__(self, prepare: Callable[[Any], Any]) -> None:
        self.prepare = prepare
        self.last: Any = _UNSET
        self.prepared: Any = None

    def __call__(self, value: Any) -> Any:
        if value is not self.last:
            self.last = value
            self.prepared = None if value is None else self.prepare(value)
        return self.prepared


_UNSET = object()


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:  # as UtcDateTime refuses them on the INSERT path
        raise ValueError("naive datetime given to a UTC column")
    return value


def _preparer(spelled: str) -> _Memo | None:
    if spelled == "TIMESTAMP WITH TIME ZONE":
        return _Memo(_aware)
    if spelled == "JSON":
        return _Memo(_json_text)
    return None


def copy_values(
    session: Session, table: Table, names: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert rows, given as values in `names` order, with COPY, in the session's transaction:
    no dict per row to build and take apart for the hundreds a fan-out chunk writes."""
    session.flush()  # rows the ORM still holds go first, as an INSERT through it would
    extra = _defaults(table, names)
    columns = [table.c[n] for n in [*names, *extra]]
    dialect = session.get_bind().dialect
    spelled = [_spelled(c, dialect) for c in columns]
    prepared = [(i, p) for i, s in enumerate(spelled) if (p := _preparer(s))]
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    )
    tail = list(extra.values())
    driver = session.connection().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types([_BINARY_TYPES[s] for s in spelled])
        for row in rows:
            values = [*row, *tail]
            for i, prepare in prepared:
                values[i] = prepare(values[i])
            copy.write_row(values)
