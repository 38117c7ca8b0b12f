"""SQL pieces that PostgreSQL and SQLite spell differently."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, any_, literal
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

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
    if is_postgres(session):
        return column == any_(literal(list(values), ARRAY(column.type)))  # type: ignore[no-any-return]
    return column.in_(list(values))  # type: ignore[no-any-return]
