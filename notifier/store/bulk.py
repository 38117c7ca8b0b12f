"""Many rows into PostgreSQL by COPY: what the fan-out and the outcome records write.

An executemany INSERT costs the client ~30 to 50 µs per row here (SQLAlchemy builds each row's
parameters, psycopg sends each as its own statement in a pipeline); COPY streams the rows as
one statement at a few µs each, and the server parses one command instead of hundreds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg import sql
from sqlalchemy import JSON, Table
from sqlalchemy.orm import Session

# Below this many rows a plain INSERT is as cheap: COPY has a fixed cost of its own.
COPY_FROM_ROWS = 8


def _defaults(table: Table, given: Sequence[str]) -> dict[str, Any]:
    """Client-side column defaults (`default=`) of columns the rows leave out: COPY, unlike
    SQLAlchemy's INSERT, knows only the server's own defaults."""
    found: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if column.name in given or default is None:
            continue
        if getattr(default, "is_scalar", False):
            found[column.name] = getattr(default, "arg", None)
        elif getattr(default, "is_callable", False):
            found[column.name] = default.arg(None)  # type: ignore[attr-defined]
    return found


# COPY's text format: these characters are escaped, NULL is \N (PostgreSQL docs, "COPY").
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: Any, is_json: bool) -> str:
    """One value in COPY's text format; formatting it here costs a fraction of a per-value
    adapter call (datetimes keep their zone, UUIDs and numbers their str())."""
    if value is None:
        return "\\N"
    if is_json:
        return json.dumps(value, separators=(",", ":")).translate(_ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        if value.tzinfo is None:  # as UtcDateTime refuses them on the INSERT path
            raise ValueError("naive datetime given to a UTC column")
        return value.isoformat()
    return str(value).translate(_ESCAPES)


class _Column:
    """_text for one column, remembering its last value by identity: the rows of a chunk
    share many values (its timestamp, a broadcast's title, body and payload), which are then
    formatted once per chunk instead of once per row."""

    __slots__ = ("is_json", "last", "text")

    def __init__(self, is_json: bool) -> None:
        self.is_json = is_json
        self.last: Any = _UNSET
        self.text = ""

    def __call__(self, value: Any) -> str:
        if value is not self.last:
            self.last, self.text = value, _text(value, self.is_json)
        return self.text


_UNSET = object()


def copy_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) with COPY, in the session's transaction."""
    session.flush()  # rows the ORM still holds go first, as an INSERT through it would
    names = list(rows[0])
    extra = _defaults(table, names)
    columns = [table.c[n] for n in [*names, *extra]]
    formats = [_Column(isinstance(c.type, JSON)) for c in columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    )
    lines = []
    for row in rows:
        values = [*(row[n] for n in names), *extra.values()]
        lines.append("\t".join([f(v) for f, v in zip(formats, values, strict=True)]))
    driver = session.connection().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(("\n".join(lines) + "\n").encode(driver.info.encoding))
