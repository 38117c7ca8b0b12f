"""Finding messages by user, state and time range, newest first, for operators and backends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from notifier import paging
from notifier.domain import states
from notifier.domain.errors import InvalidInput
from notifier.domain.requests import user_id as check_user_id
from notifier.store.db import transaction
from notifier.store.models import Message
from notifier.store.sql import MESSAGE_STATES as KNOWN_STATES
from notifier.store.sql import in_states

MESSAGE_STATES = (states.ACCEPTED, *sorted(states.MESSAGE_FINAL))


def _when(raw: str | None, field: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(field, "an ISO 8601 time, e.g. 2026-11-22T03:00:00Z") from None
    if value.tzinfo is None:
        raise InvalidInput(field, "needs a time zone, e.g. 2026-11-22T03:00:00Z")
    return value


def find_messages(
    user_id: str | None = None,
    state: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    paging.check_limit(limit)
    stmt = select(Message)
    if user_id:
        stmt = stmt.where(Message.user_id == check_user_id(user_id))
    if state:
        if state not in MESSAGE_STATES:
            raise InvalidInput("state", f"one of {', '.join(MESSAGE_STATES)}")
        # Written out, so that a generic plan still matches the partial index (a delivered
        # message is not in it: that search walks the table, as an unfiltered one does).
        stmt = stmt.where(in_states(Message.state, [state], KNOWN_STATES))
    start, end = _when(since, "since"), _when(until, "until")
    if start is not None:
        stmt = stmt.where(Message.created_at >= start)
    if end is not None:
        stmt = stmt.where(Message.created_at < end)
    if cursor:
        stmt = stmt.where(paging.before(cursor))
    with transaction() as session:
        messages = list(session.scalars(paging.newest_first(stmt, limit)))
    more = len(messages) > limit
    messages = messages[:limit]
    return {
        "items": [
            {
                "id": str(m.id),
                "user_id": m.user_id,
                "class": m.message_class,
                "policy": m.policy,
                "state": m.state,
                "created_at": m.created_at.isoformat(),
                "completed_at": m.completed_at.isoformat() if m.completed_at else None,
            }
            for m in messages
        ],
        "next_cursor": paging.cursor_of(messages[-1]) if more and messages else None,
    }
