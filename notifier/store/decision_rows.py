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

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from notifier.store.models import Delivery, Message
from notifier.store.repo import locked
from notifier.store.sql import among


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


def messages_of_deliveries(
    session: Session, delivery_ids: Sequence[uuid.UUID], user_id: str | None = None
) -> Select[uuid.UUID]:
    """The ids of the messages these deliveries belong to (with `user_id`: only that user's
    messages), as a subquery for lock_messages: an ack batch finds and locks its messages in
    one statement."""
    stmt = select(Delivery.message_id).where(among(session, Delivery.id, delivery_ids))
    if user_id is not None:
        stmt = stmt.join(Message, Message.id == Delivery.message_id).where(
            Message.user_id == user_id
        )
    return stmt


def lock_messages(
    session: Session, ids: Sequence[uuid.UUID] | Select[uuid.UUID]
) -> list[MessageRow]:
    """Lock these messages (repo.locked's mode, id order) and read what a decision needs.
    `ids` may be a subquery of message ids (messages_of_deliveries)."""
    stmt = select(*_MESSAGE_COLUMNS).where(among(session, Message.id, ids)).order_by(Message.id)
    return [MessageRow(*row) for row in session.execute(locked(session, stmt))]


def lock_deliveries_of(session: Session, message_ids: Sequence[uuid.UUID]) -> list[DeliveryRow]:
    """Lock and read every delivery of these messages in one statement, locked in id order as
    everywhere (repo.lock_deliveries); returned in each message's own order (creation, then
    id)."""
    if not message_ids:
        return []
    stmt = (
        select(*_DELIVERY_COLUMNS)
        .where(among(session, Delivery.message_id, message_ids))
        .order_by(Delivery.id)
    )
    rows = [DeliveryRow(*row) for row in session.execute(locked(session, stmt))]
    return sorted(rows, key=lambda d: (d.message_id.int, d.created_at, d.id.int))
