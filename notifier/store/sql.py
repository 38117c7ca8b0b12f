"""SQL pieces that PostgreSQL and SQLite spell differently, or that a plan depends on."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Uuid,
    any_,
    bindparam,
    cast,
    literal_column,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from notifier.domain import states
from notifier.store.db import is_postgres


def among(
    session: Session, column: Any, values: Iterable[Any] | Select[Any]
) -> ColumnElement[bool]:
    """`column IN values`. On PostgreSQL as `= ANY(array)`, one parameter however many values:
    the statement text stays the same from batch to batch, so neither SQLAlchemy nor psycopg
    renders and parses hundreds of placeholders per statement, and psycopg can prepare it
    once (the claim, the ack batch and the fan-out name hundreds of ids each). `values` may
    also be a subquery: `column IN (SELECT ...)`."""
    if isinstance(values, Select):
        return column.in_(values)  # type: ignore[no-any-return]
    postgres = is_postgres(session)
    if postgres and isinstance(column.type, Uuid):
        value: Any = uuid_array(values)
    else:
        value = list(values)
    return _any_of(column, postgres, partial(bindparam, None, value, unique=True))


def _any_of(
    column: Any, postgres: bool, param: Callable[..., BindParameter[Any]]
) -> ColumnElement[bool]:
    """`column IN` the list `param(...)` binds, as each database takes it best. `among` binds
    the values themselves, `among_param` a named parameter of a prebuilt statement."""
    if not postgres:
        return column.in_(param(expanding=True))  # type: ignore[no-any-return]
    if isinstance(column.type, Uuid):
        # An untyped parameter, so that PostgreSQL takes it as uuid[] itself and parses it
        # once. Cast from varchar instead, the array is an expression that a sequential scan
        # or a nested loop parses again for every row (a 20,000-row broadcast stalled).
        array = cast(param(type_=NullType()), ARRAY(column.type))
        return column == any_(array)  # type: ignore[no-any-return]
    return column == any_(param(type_=ARRAY(column.type)))  # type: ignore[no-any-return]


def uuid_array(values: Iterable[uuid.UUID | str]) -> str:
    """UUIDs as one PostgreSQL array literal, for `CAST(... AS uuid[])`. psycopg's list
    dumper checks every element against a quoting pattern and adapts it on its own (~1.3 µs
    per id); a batch names hundreds of ids in several statements. A UUID's hex digits need
    no quoting; a string is parsed first, so one that is no UUID raises ValueError here."""
    return (
        "{"
        + ",".join([(v if isinstance(v, uuid.UUID) else uuid.UUID(v)).hex for v in values])
        + "}"
    )


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def text_array(values: Iterable[str | None]) -> str:
    """Strings (None: NULL) as one PostgreSQL array literal, for `CAST(... AS text[])` (or
    any type whose input reads the text, timestamptz[] of ISO times). psycopg's list dumper
    looks at every element on its own (~1.3 µs each); a push batch's record names five such
    columns for each of its hundreds of deliveries. Every string is quoted, so none is read
    as NULL or split at a comma."""
    return "{" + ",".join(["NULL" if v is None else _quoted(v) for v in values]) + "}"


# --- statements built once ---------------------------------------------------------------

T = TypeVar("T")


def prebuilt(build: Callable[[bool], T]) -> Callable[[Session], T]:
    """A statement built once per kind of database (`build(postgres)`) and then reused with
    new parameters. Building one costs SQLAlchemy ~250 µs of CPU (coercions, its cache key),
    more than executing it: an ack request of a single receipt ran eight statements and spent
    3 ms of CPU, most of it building them. A reused statement keeps its memoized cache key."""
    built: dict[bool, T] = {}

    def get(session: Session) -> T:
        postgres = is_postgres(session)
        if postgres not in built:
            built[postgres] = build(postgres)
        return built[postgres]

    return get


def among_param(column: Any, name: str, postgres: bool) -> ColumnElement[bool]:
    """`among` for a prebuilt statement: `column IN` the list bound as `name` (ids_value)."""
    return _any_of(column, postgres, partial(bindparam, name))


def ids_value(session: Session, values: Iterable[uuid.UUID]) -> Any:
    """The value for an among_param of a UUID column: one array literal on PostgreSQL."""
    return uuid_array(values) if is_postgres(session) else list(values)


DELIVERY_STATES = frozenset({states.STANDBY, *states.IN_FLIGHT, *states.DELIVERY_FINAL})
MESSAGE_STATES = frozenset({states.ACCEPTED, *states.MESSAGE_FINAL})


def in_states(
    column: Any, names: Iterable[str], known: frozenset[str] = DELIVERY_STATES
) -> ColumnElement[bool]:
    """`column IN (...)` with the state names written into the statement, not bound: a
    partial index whose predicate names states (ix_deliveries_state_updated,
    ix_messages_state_created) is then usable by a prepared statement's generic plan too,
    which cannot look at bound values. Only `known` state names (a delivery's, unless told)
    are written so; anything else is refused."""
    names = list(names)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"not known states: {unknown}")
    written: ColumnElement[bool] = column.in_([literal_column(f"'{n}'") for n in names])
    return written
