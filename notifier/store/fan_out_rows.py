"""A broadcast chunk's messages and deliveries written by PostgreSQL from the devices it reads.

The fan-out used to read a chunk's devices into Python, build a row for each message and
delivery, make their ids and stream both tables back by COPY: 10-15 µs of the broadcast
worker's CPU per recipient, to copy values the database already had. Here one statement
reads the chunk's devices (the audience's own conditions, the same range of user ids), inserts
one message per user and one delivery per device, and returns the deliveries' ids as text,
which is all the push tasks carry. Ids are time-ordered as in Python (notifier_uuid7,
migration 0015). What a segment checks outside SQL (a minimum app version) still goes the
Python way (pipeline.fanout), as does SQLite.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, Text, cast, func, insert, literal, select
from sqlalchemy.orm import Session

from notifier.domain.segments import Segment
from notifier.store.audience import devices_where
from notifier.store.models import Delivery, Device, Message

_MESSAGES = typing.cast(Table, Message.__table__)
_DELIVERIES = typing.cast(Table, Delivery.__table__)


def _values(table: Table, values: Mapping[str, Any]) -> list[Any]:
    """Values every row of the chunk shares, bound with their columns' types."""
    return [literal(v, type_=table.c[k].type) for k, v in values.items()]


def insert_chunk(
    session: Session,
    segment: Segment,
    after: str | None,
    last: str,
    message_values: Mapping[str, Any],
    delivery_values: Mapping[str, Any],
) -> tuple[list[str], list[str]]:
    """Write the messages and deliveries of the segment's users past `after` up to `last`
    (PostgreSQL); returns the deliveries' ids and the messages' ids, as text, deliveries in
    user order and each user's in the order its devices were added."""
    targets = (
        select(Device.id, Device.platform, Device.token, Device.user_id, Device.created_at)
        .where(*devices_where(segment, after, last))
        .cte("targets")
    )
    users = select(targets.c.user_id).distinct().order_by(targets.c.user_id).subquery("users")
    messages = (
        insert(_MESSAGES)
        .from_select(
            ["id", "user_id", *message_values],
            select(func.notifier_uuid7(), users.c.user_id, *_values(_MESSAGES, message_values)),
            include_defaults=False,
        )
        .returning(_MESSAGES.c.id, _MESSAGES.c.user_id)
        .cte("messages")
    )
    rows = (
        select(
            func.notifier_uuid7(),
            messages.c.id,
            targets.c.id,
            targets.c.platform,
            targets.c.token,
            *_values(_DELIVERIES, delivery_values),
        )
        .select_from(targets.join(messages, messages.c.user_id == targets.c.user_id))
        .order_by(targets.c.user_id, targets.c.created_at)
    )
    stmt = (
        insert(_DELIVERIES)
        .from_select(
            ["id", "message_id", "device_id", "platform", "target", *delivery_values],
            rows,
            include_defaults=False,
        )
        .returning(cast(_DELIVERIES.c.id, Text), cast(_DELIVERIES.c.message_id, Text))
    )
    written = session.execute(stmt).all()
    return [d for d, _ in written], list(dict.fromkeys(m for _, m in written))
