"""How notifier's PostgreSQL connections are set up and kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC

import psycopg
import pytest
from sqlalchemy import Engine, text

from notifier.store import db


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    yield db.engine_for(pg_url)
    db.dispose_engine(pg_url)


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _kill(pg_url: str, pid: int) -> None:
    """What a database restart does to a pooled connection: the server end goes away."""
    with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_a_connection_that_sat_idle_is_pinged_and_replaced_when_dead(
    engine: Engine, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(engine)
    _kill(pg_url, first)
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)  # as if it had sat idle for long
    assert _backend_pid(engine) != first  # the ping found it dead: a new connection serves


def test_a_connection_in_use_a_moment_ago_goes_out_without_a_ping(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[object] = []
    _backend_pid(engine)
    monkeypatch.setattr(engine.dialect, "do_ping", pings.append)
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 60.0)
    _backend_pid(engine)
    assert pings == []
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    _backend_pid(engine)
    assert len(pings) == 1


def test_connections_carry_the_name_of_the_process_type(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "_role", db._role)  # the test process's own name comes back after
    db.name_connections("worker push_bulk")
    engine = db.make_engine(pg_url)
    try:
        with engine.connect() as conn:
            name = conn.execute(text("SELECT current_setting('application_name')")).scalar_one()
    finally:
        engine.dispose()
    assert name == "notifier worker push_bulk"


def test_sessions_run_in_utc_whatever_the_servers_zone_and_without_jit(pg_url: str) -> None:
    with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as admin:
        name = admin.execute("SELECT current_database()").fetchone()
        assert name is not None
        admin.execute(f"ALTER DATABASE \"{name[0]}\" SET TimeZone = 'Asia/Kolkata'")
    engine = db.make_engine(pg_url)
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            value = raw.execute("SELECT timestamptz '2026-01-02 03:04:05+00'").fetchone()
            jit = raw.execute("SHOW jit").fetchone()
    finally:
        engine.dispose()
    assert value is not None
    assert value[0].tzinfo is UTC  # not the server's zone, not a zoneinfo "UTC"
    assert value[0].isoformat() == "2026-01-02T03:04:05+00:00"
    assert jit == ("off",)  # short statements only: compiling them costs more than it saves


def test_options_given_in_the_url_are_kept_beside_notifier_s_own(pg_url: str) -> None:
    engine = db.make_engine(f"{pg_url}?options=-c%20statement_timeout%3D1234")
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            names = ("statement_timeout", "jit")
            shown = [raw.execute(f"SHOW {name}").fetchone() for name in names]
    finally:
        engine.dispose()
    assert shown == [("1234ms",), ("off",)]
