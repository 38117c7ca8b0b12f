"""Opaque cursors for newest-first pages keyed by (created_at, id)."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_

from notifier.domain.errors import InvalidInput
from notifier.store.models import Message

MAX_PAGE = 100


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"from 1 to {MAX_PAGE}")
    return limit


def cursor_of(message: Message) -> str:
    raw = f"{message.created_at.isoformat()}|{message.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def before(cursor: str) -> Any:
    """The WHERE clause for the messages after `cursor` in newest-first order."""
    try:
        raw, _, mid = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        at, message_id = datetime.fromisoformat(raw), uuid.UUID(mid)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor", "is not a cursor this API returned") from None
    return or_(Message.created_at < at, and_(Message.created_at == at, Message.id < message_id))


def newest_first(stmt: Any, limit: int) -> Any:
    return stmt.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit + 1)
