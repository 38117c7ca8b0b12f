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
from sqlalchemy.dialects.postgresql import distinct_on
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
    first: str,
    last: str,
    message_values: Mapping[str, Any],
    delivery_values: Mapping[str, Any],
) -> tuple[list[str], list[str]]:
    """Write the messages and deliveries of the segment's users from `first` up to `last`
    (PostgreSQL); returns the deliveries' ids and the messages' ids, as text, deliveries in
    user order and each user's in the order its devices were added."""
    # Each device row carries its user's message id: the first of the user's rows' own ids,
    # so that both inserts read one materialized set and neither joins the other. (Joined on
    # the messages' RETURNING, the generic plan of the prepared statement took the join's
    # inputs for one row each and nested them: 25 million comparisons, ~3 s a chunk.) The
    # ids are made a level below the window: its argument is evaluated again for each row
    # it is read for, and a function of its own would give a user's devices several messages.
    devices = (
        select(
            Device.id,
            Device.platform,
            Device.token,
            Device.user_id,
            Device.created_at,
            func.notifier_uuid7().label("own_id"),
        )
        .where(*devices_where(segment, first=first, last=last))
        .subquery("devices")
    )
    message_id = func.first_value(devices.c.own_id).over(partition_by=devices.c.user_id)
    # Materialized, said outright: both inserts must read the same ids (PostgreSQL does so
    # for a CTE read twice or holding a volatile call, and is told so anyway).
    targets = (
        select(
            *(devices.c[k] for k in ("id", "platform", "token", "user_id", "created_at")),
            message_id.label("message_id"),
        )
        .cte("targets")
        .prefix_with("MATERIALIZED")
    )
    one_per_user = (
        select(targets.c.message_id, targets.c.user_id, *_values(_MESSAGES, message_values))
        .ext(distinct_on(targets.c.user_id))
        .order_by(targets.c.user_id)
    )
    messages = insert(_MESSAGES).from_select(
        ["id", "user_id", *message_values], one_per_user, include_defaults=False
    )
    rows = select(
        func.notifier_uuid7(),
        targets.c.message_id,
        targets.c.id,
        targets.c.platform,
        targets.c.token,
        *_values(_DELIVERIES, delivery_values),
    ).order_by(targets.c.user_id, targets.c.created_at)
    stmt = (
        insert(_DELIVERIES)
        .from_select(
            ["id", "message_id", "device_id", "platform", "target", *delivery_values],
            rows,
            include_defaults=False,
        )
        .add_cte(messages.cte("messages"))
        .returning(cast(_DELIVERIES.c.id, Text), cast(_DELIVERIES.c.message_id, Text))
    )
    written = session.execute(stmt).all()
    return [d for d, _ in written], list(dict.fromkeys(m for _, m in written))
