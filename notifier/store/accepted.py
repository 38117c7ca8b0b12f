"""Writing an accepted message: the message, its deliveries and its first events.

A transactional send is on a one-time code's latency path, and under a broadcast every round
trip to the database waits its turn for a CPU. Through the ORM the write was three of them
(the message flushed first so the deliveries' foreign key finds it, the events, the deliveries at
commit); on PostgreSQL it is one INSERT whose data-modifying CTEs write the three tables
(store/together.py).
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session, class_mapper

from notifier.store import bulk, repo
from notifier.store.db import is_postgres
from notifier.store.models import Delivery, Event, Message
from notifier.store.repo import EventRow
from notifier.store.together import insert_together

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
        session.flush()  # the deliveries' foreign key needs the message first
        session.add_all(deliveries)
        repo.add_events(session, events, at)
        return
    writes = [(_MESSAGES, _rows([message])), (_DELIVERIES, _rows(deliveries) if deliveries else [])]
    insert_together(session, [*writes, (_EVENTS, repo.event_values(events, at))])


def _rows(objects: Sequence[Message] | Sequence[Delivery]) -> list[dict[str, Any]]:
    """The column values of the objects, one dict per object with the same keys (the
    statement is text, so nothing fills in client-side defaults later): what the object was
    given, else the column's client-side default (also set on the object, as a flush would),
    else None. A column none of them was given and without a client-side default is left
    out, to its server default."""
    columns, defaulted = _columns_of(type(objects[0]))
    given = [{k: v for k, v in vars(o).items() if k in columns} for o in objects]
    keys = sorted({k for g in given for k in g} | defaulted)
    for obj, values in zip(objects, given, strict=True):
        for key in keys:
            if key not in values:
                values[key] = bulk.column_default(columns[key])
                setattr(obj, key, values[key])
    return [{columns[k].key: g[k] for k in keys} for g in given]


@functools.cache
def _columns_of(model: type[Any]) -> tuple[dict[str, Any], frozenset[str]]:
    """A model's columns by attribute, and those with a client-side default: the same for
    every send, so worked out once per model."""
    columns = {p.key: p.columns[0] for p in class_mapper(model).column_attrs}
    return columns, frozenset(k for k, c in columns.items() if c.default is not None)
