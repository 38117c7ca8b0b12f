"""Prebuilt statements run on the driver (store.direct) read and fail as through SQLAlchemy."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import bindparam, exc, select, text

from notifier.store import direct
from notifier.store.db import transaction
from notifier.store.models import Message, User
from notifier.store.sql import among_param, ids_value, prebuilt, text_array

_MESSAGES = prebuilt(
    lambda pg: (
        select(Message.id, Message.state, Message.created_at, Message.push_data)
        .where(among_param(Message.id, "ids", pg))
        .where(Message.created_at < bindparam("before", type_=Message.created_at.type))
        .where(Message.policy == bindparam("policy", "push_only"))  # a value bound in the statement
        .order_by(Message.id)
    )
)


def _messages(n: int) -> list[uuid.UUID]:
    now = datetime.now(UTC)
    rows = [
        Message(id=uuid.uuid4(), user_id="u1", policy="push_only", state="accepted",
                push_data={"n": i, "deep": [1, "two"]}, sms_params={}, receipt_deadline_s=30,
                expires_at=now + timedelta(hours=1), created_at=now, updated_at=now)
        for i in range(n)
    ]  # fmt: skip
    with transaction() as s:
        s.add(User(id="u1", created_at=now, updated_at=now))
        s.flush()
        s.add_all(rows)
    return sorted(m.id for m in rows)


def test_rows_are_what_sqlalchemy_reads(migrated: str) -> None:
    ids = _messages(3)
    params = {"before": datetime.now(UTC) + timedelta(minutes=1)}
    with transaction() as s:
        stmt = _MESSAGES(s)
        expected = [tuple(r) for r in s.execute(stmt, {**params, "ids": ids_value(s, ids)})]
        got = direct.rows(s, stmt, {**params, "ids": ids_value(s, ids)})
        again = direct.rows(s, stmt, {**params, "ids": ids_value(s, ids[:1])})
    assert [tuple(r) for r in got] == expected
    assert [r[0] for r in got] == ids
    assert got[0][2].tzinfo is not None and got[0][3]["deep"] == [1, "two"]
    assert [r[0] for r in again] == ids[:1]


def test_a_value_the_column_type_refuses_fails_as_in_sqlalchemy(migrated: str) -> None:
    ids = _messages(1)
    naive = datetime.now()  # UtcDateTime refuses a datetime without a zone
    with transaction() as s, pytest.raises(exc.StatementError, match="naive datetime"):
        direct.rows(s, _MESSAGES(s), {"ids": ids_value(s, ids), "before": naive})


def test_database_errors_are_sqlalchemy_errors_and_roll_back(pg: str) -> None:
    ids = _messages(1)
    insert_again = text(
        "INSERT INTO messages (id, user_id, policy, state, push_data, sms_params,"
        " receipt_deadline_s, expires_at, created_at, updated_at)"
        " SELECT id, user_id, policy, 'failed', push_data, sms_params, receipt_deadline_s,"
        " expires_at, created_at, updated_at FROM messages WHERE id = CAST(:id AS uuid)"
    )
    with pytest.raises(exc.IntegrityError), transaction() as s:
        direct.rows(s, text("UPDATE messages SET state = 'failed'"), {})
        direct.rows(s, insert_again, {"id": str(ids[0])})
    with transaction() as s:
        assert s.execute(select(Message.state)).scalar_one() == "accepted"


def test_a_lost_connection_is_an_operational_error_and_leaves_the_pool(pg: str) -> None:
    with transaction() as s:
        pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin_url = pg.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(exc.OperationalError) as raised, transaction() as s:
        direct.rows(s, text("SELECT 1"), {})
    assert raised.value.connection_invalidated
    with transaction() as s:  # the pool hands out a working connection again
        assert direct.rows(s, text("SELECT 1"), {}) == [(1,)]


def test_a_text_array_literal_reads_back_every_string_as_it_was(pg: str) -> None:
    values = [
        'say "hi"',
        "back\\slash",
        "a, b",
        "{braces}",
        "NULL",
        "",
        " padded ",
        "ünï\ncode",
        None,
    ]
    at = datetime(2026, 12, 7, 10, 30, 0, 123456, tzinfo=UTC)
    with transaction() as s:
        read = direct.rows(s, text("SELECT CAST(:v AS text[])"), {"v": text_array(values)})
        times = direct.rows(
            s, text("SELECT CAST(:v AS timestamptz[])"), {"v": text_array([at.isoformat(), None])}
        )
    assert read == [(values,)]
    assert times == [([at, None],)]
