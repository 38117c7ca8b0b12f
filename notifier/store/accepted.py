"""Writing an accepted message: the message, its deliveries and its first events.

A transactional send is on a one-time code's latency path, and under a broadcast every round
trip to the database waits its turn for a CPU. Through the ORM the write was three of them
(the message flushed first so the events' foreign key finds it, the events, the deliveries at
commit); on PostgreSQL it is one INSERT whose data-modifying CTEs write the three tables
(foreign keys are checked at the end of the statement, when all three are in).
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect, Table, bindparam, insert
from sqlalchemy.orm import Session, class_mapper

from notifier.store import repo
from notifier.store.db import is_postgres
from notifier.store.models import Delivery, Event, Message
from notifier.store.repo import EventRow

_MESSAGES = typing.cast(Table, Message.__table__)
_DELIVERIES = typing.cast(Table, Delivery.__table__)
_EVENTS = typing.cast(Table, Event.__table__)


def write_accepted(
    session: Session,
    message: Message,
    deliveries: Sequence[Delivery],
    events: Sequence[EventRow],
    at: datetime,
) -> None:
    """Insert a new message with its deliveries and events in the caller's transaction.

    On PostgreSQL the objects stay out of the session (nothing reads them back from it: the
    caller publishes from their attributes); on SQLite, which has no data-modifying CTEs,
    they are added and flushed as before."""
    if not is_postgres(session):
        session.add(message)
        session.flush()  # the events' foreign key needs the message first
        session.add_all(deliveries)
        repo.add_events(session, events, at)
        return
    (m,) = _rows([message])
    d = _rows(deliveries) if deliveries else []
    e = [_event_row(event, at) for event in events]
    values = {f"m_{k}": v for k, v in m.items()}
    values.update({f"d{i}_{k}": v for i, row in enumerate(d) for k, v in row.items()})
    values.update({f"e{i}_{k}": v for i, row in enumerate(e) for k, v in row.items()})
    connection = session.connection()
    sql, processors = _shaped(
        connection.dialect, tuple(m), tuple(d[0]) if d else (), len(d), len(e)
    )
    for name, process in processors.items():
        values[name] = process(values[name])
    connection.exec_driver_sql(sql, values)


@functools.lru_cache(maxsize=64)
def _shaped(
    dialect: Dialect,
    message_keys: tuple[str, ...],
    delivery_keys: tuple[str, ...],
    deliveries: int,
    events: int,
) -> tuple[str, dict[str, Callable[[Any], Any]]]:
    """The statement's text for one shape of send, with the type processors of its
    parameters (JSON to text, the UTC check of datetimes). Compiled once per shape and run as
    text: SQLAlchemy does not cache the compiled form of an INSERT with DML CTEs, and
    compiling it cost ~7 ms of CPU per send, more than the three inserts it replaces."""
    binds: dict[str, Any] = {}

    def params(table: Table, prefix: str, keys: Sequence[str]) -> dict[str, Any]:
        for k in keys:
            binds[f"{prefix}{k}"] = table.c[k].type
        return {k: bindparam(f"{prefix}{k}", type_=table.c[k].type) for k in keys}

    stmt = insert(_EVENTS).values([params(_EVENTS, f"e{i}_", _EVENT_KEYS) for i in range(events)])
    message = insert(_MESSAGES).values(params(_MESSAGES, "m_", message_keys))
    stmt = stmt.add_cte(message.cte("new_message"))
    if deliveries:
        rows = [params(_DELIVERIES, f"d{i}_", delivery_keys) for i in range(deliveries)]
        stmt = stmt.add_cte(insert(_DELIVERIES).values(rows).cte("new_deliveries"))
    processors = {
        name: process
        for name, kind in binds.items()
        if (process := kind.dialect_impl(dialect).bind_processor(dialect)) is not None
    }
    return str(stmt.compile(dialect=dialect)), processors


_EVENT_KEYS = ("message_id", "delivery_id", "kind", "detail", "created_at")


def _event_row(event: EventRow, at: datetime) -> dict[str, Any]:
    values = (event.message_id, event.delivery_id, event.kind, event.detail, at)
    return dict(zip(_EVENT_KEYS, values, strict=True))


def _rows(objects: Sequence[Message] | Sequence[Delivery]) -> list[dict[str, Any]]:
    """Every column value of the objects, one dict per object with the same keys (the
    statement is text, so nothing fills in defaults later): what the object was given, else
    the column's client-side default (also set on the object, as a flush would), else None
    for the columns whose default the server has."""
    mapper = class_mapper(type(objects[0]))
    columns = {p.key: p.columns[0] for p in mapper.column_attrs}
    given = [{k: v for k, v in vars(o).items() if k in columns} for o in objects]
    keys = sorted({k for g in given for k in g} | {k for k, c in columns.items() if c.default})
    for obj, values in zip(objects, given, strict=True):
        for key in keys:
            if key not in values:
                values[key] = _default(columns[key])
                setattr(obj, key, values[key])
    return [{columns[k].key: g[k] for k in keys} for g in given]


def _default(column: Any) -> Any:
    default = column.default
    if default is None:
        return None
    if getattr(default, "is_scalar", False):
        return default.arg
    return default.arg(None)
