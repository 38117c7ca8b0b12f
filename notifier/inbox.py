"""The per-user inbox: every message a user was sent, whichever channel carried it.

A push that vanished from the lock screen, or an SMS deleted from the phone, can always be
found again here. Newest first, paginated with an opaque cursor, with an unread count.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select, update

from notifier import paging
from notifier.domain import states
from notifier.domain.errors import InvalidInput
from notifier.domain.requests import user_id as check_user_id
from notifier.store import repo
from notifier.store.db import transaction
from notifier.store.models import Delivery, Message

# The channel took the message to the phone (or to the carrier, for SMS).
CARRIED = frozenset(
    {states.SENT, states.ACKED, states.OPENED, states.UNCONFIRMED, states.SUBMITTED}
    | {states.DELIVERED}
)


def _item(message: Message, deliveries: list[Delivery]) -> dict[str, Any]:
    sms = next((d for d in deliveries if d.channel == states.SMS), None)
    reached = sorted({d.channel for d in deliveries if d.state in CARRIED})
    return {
        "message_id": str(message.id),
        "created_at": message.created_at.isoformat(),
        "title": message.push_title,
        "body": message.push_body,
        "sms_text": sms.sms_text if sms else None,
        "state": message.state,
        "channels": reached,
        "read": message.read_at is not None,
    }


def page(user: str, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
    uid = check_user_id(user)
    paging.check_limit(limit)
    stmt = select(Message).where(Message.user_id == uid)
    if cursor:
        stmt = stmt.where(paging.before(cursor))
    stmt = paging.newest_first(stmt, limit)
    with transaction() as session:
        messages = list(session.scalars(stmt))
        more = len(messages) > limit
        messages = messages[:limit]
        by_message: dict[uuid.UUID, list[Delivery]] = defaultdict(list)
        for d in repo.deliveries_of(session, [m.id for m in messages]):
            by_message[d.message_id].append(d)
        unread = session.scalar(
            select(func.count()).where(Message.user_id == uid, Message.read_at.is_(None))
        )
    return {
        "items": [_item(m, by_message[m.id]) for m in messages],
        "unread": int(unread or 0),
        "next_cursor": paging.cursor_of(messages[-1]) if more and messages else None,
    }


def mark_read(user: str, message_ids: list[str] | None) -> int:
    """Mark these messages (or, with None, all of them) read; returns how many changed."""
    uid = check_user_id(user)
    stmt = update(Message).where(Message.user_id == uid, Message.read_at.is_(None))
    if message_ids is not None:
        try:
            ids = [uuid.UUID(str(i)) for i in message_ids]
        except ValueError:
            raise InvalidInput("message_ids", "must be message ids (UUIDs)") from None
        stmt = stmt.where(Message.id.in_(ids))
    with transaction() as session:
        result = session.execute(
            stmt.values(read_at=repo.utcnow())
            .returning(Message.id)
            .execution_options(synchronize_session=False)
        )
        return len(result.all())
