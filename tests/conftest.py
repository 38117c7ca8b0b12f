"""Shared fixtures: fresh databases and Redis key spaces per run, settings pointed at them.

Under CI=true a missing PostgreSQL or Redis fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from config.settings import get_settings

PG_ADMIN_URL = os.environ.get("NOTIFIER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("NOTIFIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def service_missing(name: str, error: Exception) -> None:
    message = f"{name} is not reachable ({error}); this test needs it"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(f"!!! SKIPPED: {message} — start it to run this test")


def _sqlalchemy_pg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set NOTIFIER_* variables for one test; the settings cache follows them."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    name = f"notifier_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        service_missing("PostgreSQL", exc)
        raise
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield _sqlalchemy_pg(f"{base}/{name}")
    from notifier.store.db import dispose_engine

    dispose_engine(_sqlalchemy_pg(f"{base}/{name}"))
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'notifier.db'}"


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix no other run uses; its keys are deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing("Redis", exc)
        raise
    prefix = f"notifier-test-{secrets.token_hex(4)}:"
    yield prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once per supported database (the same migrations, the same code)."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def migrated(db_url: str, env: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Settings pointed at a migrated database of each kind, filesystem broker in tmp."""
    from notifier.store import migrate

    env.setenv("NOTIFIER_HOME", str(tmp_path))
    env.setenv("NOTIFIER_DATABASE_URL", db_url)
    env.delenv("NOTIFIER_BROKER_URL", raising=False)
    get_settings.cache_clear()
    migrate.upgrade(db_url)
    return db_url
