"""Prebuilt statements run straight on the driver's connection (PostgreSQL).

SQLAlchemy's execution path (execution context, cursor wrapper, result and row objects) costs
~50-130 µs of CPU per statement here on top of psycopg's own, and a Row per result row on top
of the tuple psycopg made: an ack batch runs five such statements, a push batch four, and the
statements are the same text every time (sql.prebuilt). `rows()` compiles a statement once,
keeps its text and its parameters' bind processors (UtcDateTime's check), and hands each run
to psycopg in the session's transaction. Errors are raised as SQLAlchemy raises them (the
same exception classes, a dropped connection invalidated in the pool), so callers' handling of
a database that went away is unchanged. SQLite runs through the session as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import psycopg
from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from notifier.store.db import is_postgres

# statement -> (driver text, bind processors by parameter name, literal values by name)
_Compiled = tuple[str, dict[str, Any], dict[str, Any]]
_compiled: dict[int, tuple[Executable, _Compiled]] = {}


def rows(session: Session, stmt: Executable, params: Mapping[str, Any]) -> list[Any]:
    """The result rows of a statement built once (sql.prebuilt) as tuples; [] when it returns
    none."""
    if not is_postgres(session):
        return [tuple(row) for row in session.execute(stmt, params)]
    connection = session.connection()
    sql, processors, literals = _compile(stmt, connection.dialect)
    values = {**literals, **params} if literals else dict(params)
    try:
        for name, process in processors.items():
            if name in values:
                values[name] = process(values[name])
    except Exception as error:  # as SQLAlchemy reports a value its type refuses
        raise exc.StatementError(str(error), sql, dict(params), error) from error
    raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    try:
        cursor = raw.execute(sql, values)
        return cursor.fetchall() if cursor.description is not None else []
    except psycopg.Error as error:
        raise _translated(session, error, sql, values) from error


def _compile(stmt: Executable, dialect: Dialect) -> _Compiled:
    cached = _compiled.get(id(stmt))
    if cached is not None and cached[0] is stmt:
        return cached[1]
    compiled = cast(SQLCompiler, cast(ClauseElement, stmt).compile(dialect=dialect))
    processors: dict[str, Any] = {}
    for name, param in compiled.binds.items():
        process = param.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    literals = {n: p.effective_value for n, p in compiled.binds.items() if not p.required}
    built: _Compiled = (compiled.string, processors, literals)
    # keyed by id, the statement kept beside it: prebuilt statements live as long as the process
    _compiled[id(stmt)] = (stmt, built)
    return built


def _translated(
    session: Session, error: psycopg.Error, sql: str, values: Mapping[str, Any]
) -> exc.StatementError:
    """The error as SQLAlchemy would have raised it; a lost connection leaves the pool."""
    connection = session.connection()
    lost = connection.dialect.is_disconnect(cast(Any, error), connection.connection, None)
    if lost:
        connection.invalidate(error)
    return exc.DBAPIError.instance(
        sql, dict(values), error, psycopg.Error, connection_invalidated=lost,
        dialect=connection.dialect,
    )  # fmt: skip
