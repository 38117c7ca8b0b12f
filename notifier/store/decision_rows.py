"""The locked picture a decision is made on (acks, receipt checks, reports, the sweep), read
as plain rows instead of ORM objects.

An ack batch or a receipt check locks hundreds of messages and their deliveries; building and
tracking an ORM object for each cost more CPU than the rest of the decision. These rows carry
only what `states.advance` reads, and every write the decision leads to is an explicit,
set-based statement (pipeline.advance), never a flush of changed objects.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, select
from sqlalchemy.orm import Session

from notifier.store import direct
from notifier.store.models import Delivery, Message
from notifier.store.repo import locked_on
from notifier.store.sql import among_param, ids_value, prebuilt


@dataclass(slots=True, eq=False)
class PlanRow:
    """What a message's plan and progress are read from (pipeline.advance.progress_of): the
    common part of the message rows decisions and the push stage read."""

    id: uuid.UUID
    message_class: str
    policy: str
    chain: list[dict[str, Any]] | None
    step: int
    receipt_deadline_s: int
    receipt_due_at: datetime | None
    expires_at: datetime
    confirm_trigger: str


@dataclass(slots=True, eq=False)
class MessageRow(PlanRow):
    state: str
    about_device: uuid.UUID | None
    user_id: str


@dataclass(slots=True, eq=False)
class DeliveryRow:
    id: uuid.UUID
    message_id: uuid.UUID
    channel: str
    state: str
    step: int
    created_at: datetime


def columns_of(row: type[Any], model: type[Any]) -> tuple[Any, ...]:
    """The model's columns named by the row type's fields, in their order: a row is then
    built positionally from a result row."""
    return tuple(getattr(model, f.name) for f in fields(row))


_MESSAGE_COLUMNS = columns_of(MessageRow, Message)
_DELIVERY_COLUMNS = columns_of(DeliveryRow, Delivery)


def _lock_messages(postgres: bool, of_deliveries: bool = False, of_user: bool = False) -> Any:
    """Lock messages (repo.locked's mode, id order) and read what a decision needs: those
    named by id, or those the deliveries named belong to (with `of_user`: only that user's),
    so that an ack batch finds and locks its messages in one statement."""
    if of_deliveries:
        found = select(Delivery.message_id).where(among_param(Delivery.id, "ids", postgres))
        if of_user:
            found = found.join(Message, Message.id == Delivery.message_id).where(
                Message.user_id == bindparam("user_id")
            )
        where: ColumnElement[bool] = Message.id.in_(found)
    else:
        where = among_param(Message.id, "ids", postgres)
    return locked_on(postgres, select(*_MESSAGE_COLUMNS).where(where).order_by(Message.id))


_LOCK_MESSAGES = prebuilt(_lock_messages)
_LOCK_MESSAGES_OF_DELIVERIES = prebuilt(lambda pg: _lock_messages(pg, of_deliveries=True))
_LOCK_USER_MESSAGES_OF_DELIVERIES = prebuilt(lambda pg: _lock_messages(pg, True, of_user=True))


def lock_messages(session: Session, ids: Sequence[uuid.UUID]) -> list[MessageRow]:
    """Lock these messages (repo.locked's mode, id order) and read what a decision needs."""
    params = {"ids": ids_value(session, ids)}
    return [MessageRow(*row) for row in direct.rows(session, _LOCK_MESSAGES(session), params)]


def lock_messages_of_deliveries(
    session: Session, delivery_ids: Sequence[uuid.UUID], user_id: str | None = None
) -> list[MessageRow]:
    """As lock_messages, for the messages these deliveries belong to (with `user_id`: only
    that user's messages)."""
    params: dict[str, Any] = {"ids": ids_value(session, delivery_ids)}
    if user_id is None:
        stmt = _LOCK_MESSAGES_OF_DELIVERIES(session)
    else:
        stmt, params["user_id"] = _LOCK_USER_MESSAGES_OF_DELIVERIES(session), user_id
    return [MessageRow(*row) for row in direct.rows(session, stmt, params)]


def _lock_deliveries_of(postgres: bool) -> Any:
    stmt = select(*_DELIVERY_COLUMNS).where(among_param(Delivery.message_id, "ids", postgres))
    return locked_on(postgres, stmt.order_by(Delivery.id))


_LOCK_DELIVERIES_OF = prebuilt(_lock_deliveries_of)


def lock_deliveries_of(session: Session, message_ids: Sequence[uuid.UUID]) -> list[DeliveryRow]:
    """Lock and read every delivery of these messages in one statement, locked in id order as
    everywhere (repo.lock_deliveries); returned in each message's own order (creation, then
    id)."""
    if not message_ids:
        return []
    params = {"ids": ids_value(session, message_ids)}
    stmt = _LOCK_DELIVERIES_OF(session)
    rows = [DeliveryRow(*row) for row in direct.rows(session, stmt, params)]
    return sorted(rows, key=lambda d: (d.message_id.int, d.created_at, d.id.int))
