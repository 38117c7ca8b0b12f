"""The per-user inbox: every message a user was sent, whichever channel carried it.

A push that vanished from the lock screen, or an SMS deleted from the phone, can always be
found again here. Newest first, paginated with an opaque cursor, with an unread count.
"""

from __future__ import annotations

import base64
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from notifier.domain import states
from notifier.domain.errors import InvalidInput
from notifier.domain.requests import user_id as check_user_id
from notifier.store import repo
from notifier.store.db import transaction
from notifier.store.models import Delivery, Message

MAX_PAGE = 100


def _cursor(message: Message) -> str:
    raw = f"{message.created_at.isoformat()}|{message.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, _, mid = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(at), uuid.UUID(mid)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor", "is not a cursor this API returned") from None


def _item(message: Message, deliveries: list[Delivery]) -> dict[str, Any]:
    sms = next((d for d in deliveries if d.channel == states.SMS), None)
    reached = sorted(
        {
            d.channel
            for d in deliveries
            if d.state
            in (states.ACKED, states.DELIVERED, states.SENT, states.UNCONFIRMED, states.SUBMITTED)
        }
    )
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
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"from 1 to {MAX_PAGE}")
    stmt = select(Message).where(Message.user_id == uid)
    if cursor:
        at, mid = _parse_cursor(cursor)
        stmt = stmt.where(
            or_(Message.created_at < at, and_(Message.created_at == at, Message.id < mid))
        )
    stmt = stmt.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit + 1)
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
        "next_cursor": _cursor(messages[-1]) if more and messages else None,
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
