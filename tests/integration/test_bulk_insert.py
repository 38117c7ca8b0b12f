"""Rows written in bulk (COPY on PostgreSQL) read back exactly as an INSERT would store them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from notifier.store import bulk, repo
from notifier.store.db import transaction
from notifier.store.models import Delivery, Event, Message, User

AWKWARD = ["tab\there", "line\nbreak", "cr\r", "back\\slash", "\\N", "", None, "\\.", "緊急 €"]


def _message(now: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(), "user_id": "u", "policy": "push_only", "state": "accepted",
        "push_title": "T\tab", "push_body": None,
        "push_data": {"k": "v\\\"\n", "n": "1"}, "sms_params": {},
        "receipt_deadline_s": 30, "expires_at": now + timedelta(hours=1),
        "created_at": now, "updated_at": now,
    }  # fmt: skip


def test_bulk_rows_round_trip_awkward_values_and_defaults(migrated):
    now = datetime.now(UTC)
    with transaction() as s:
        s.add(User(id="u", created_at=now, updated_at=now))
        messages = [_message(now) for _ in range(bulk.COPY_FROM_ROWS)]
        repo.insert_rows(s, Message, messages)
        deliveries = [
            {"id": uuid.uuid4(), "message_id": m["id"], "channel": "sms", "lane": "sms",
             "target": "+8613800138000", "state": "queued", "attempts": 0,
             "sms_cost": Decimal("0.04500"), "created_at": now, "updated_at": now}
            for m in messages
        ]  # fmt: skip
        repo.insert_rows(s, Delivery, deliveries)  # `replays` left to its client-side default
        repo.add_events(s, [repo.EventRow(messages[0]["id"], "note", d) for d in AWKWARD], now)
    with transaction() as s:
        stored = {m.id: m for m in s.scalars(select(Message))}
        assert stored[messages[0]["id"]].push_data == messages[0]["push_data"]
        assert stored[messages[0]["id"]].push_title == "T\tab"
        assert stored[messages[0]["id"]].push_options == {}  # default=dict
        assert stored[messages[0]["id"]].created_at == now
        rows = list(s.scalars(select(Delivery)))
        assert {d.replays for d in rows} == {0}
        assert {d.sms_cost for d in rows} == {Decimal("0.04500")}
        details = list(s.scalars(select(Event.detail).order_by(Event.id)))
        assert details == AWKWARD


def test_naive_datetimes_are_refused(migrated):
    naive = datetime.now()  # the point of the test: no zone
    with transaction() as s, pytest.raises((ValueError, StatementError), match="naive"):
        repo.insert_rows(
            s, Event, [{"message_id": uuid.uuid4(), "kind": "x", "created_at": naive}] * 8
        )
