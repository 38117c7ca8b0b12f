"""Shared fixtures: fresh databases and Redis key spaces per run, settings pointed at them.

Under CI=true a missing PostgreSQL or Redis fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import get_settings
from tests.services import fresh_pg_database, fresh_redis_prefix


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set NOTIFIER_* variables for one test; the settings cache follows them."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    from notifier.store.db import dispose_engine

    url = f"sqlite:///{tmp_path / 'notifier.db'}"
    yield url
    dispose_engine(url)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    with fresh_redis_prefix() as prefix:
        yield prefix


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once per supported database (the same migrations, the same code)."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def pg(pg_url: str, env: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Settings pointed at a migrated PostgreSQL database, for what only PostgreSQL has
    (plans, the driver path of store.direct)."""
    from notifier.store import migrate

    env.setenv("NOTIFIER_HOME", str(tmp_path))
    env.setenv("NOTIFIER_DATABASE_URL", pg_url)
    migrate.upgrade(pg_url)
    return pg_url


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
