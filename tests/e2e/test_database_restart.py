"""Fault scenario 4: PostgreSQL crashes mid-burst (every connection dropped) and comes back.

It runs its own PostgreSQL cluster on a free port (never the machine's shared one). While the
database is away, the producer is told `Unavailable` and retries with the same idempotency
key (what the HTTP API's 503 asks a client to do); workers retry their tasks with backoff;
acks and delivery reports the API could not take are re-sent by the mocks or polled later.
Afterwards every message is final, each SMS at the carrier exactly once, no push twice.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from notifier.demo.stack import Stack, free_port
from tests.e2e.scenarios import (
    BURST,
    TEMPLATE,
    TIMINGS,
    burst,
    measure,
    send_with_retry,
    timeout_for,
)
from tests.helpers import approved_catalogue
from tests.services import REDIS_URL, fresh_redis_prefix, service_missing


def _binary(name: str) -> str:
    installed = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    found = shutil.which(name) or (installed[-1] if installed else None)
    if found is None:
        service_missing(f"PostgreSQL server binary {name}", FileNotFoundError(name))
        raise AssertionError("unreachable")
    return found


class PrivatePostgres:
    """A throw-away cluster: initdb, start, crash (`stop -m immediate`), start again."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="notifier-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        # PostgreSQL refuses to run as root: on a root shell it runs as the postgres user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.folder, "postgres")

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.as_user, *argv], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(_binary("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / "server.log")
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def crash(self) -> None:
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.crash()
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def accepts(self) -> bool:
        try:
            psycopg.connect(self.url.replace("+psycopg", ""), connect_timeout=1).close()
            return True
        except psycopg.OperationalError:
            return False


@pytest.fixture(scope="module")
def database() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def stack(database: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with fresh_redis_prefix() as prefix:
        overrides = {
            "NOTIFIER_DATABASE_URL": database.url,
            "NOTIFIER_BROKER_URL": REDIS_URL,
            "NOTIFIER_BROKER_KEY_PREFIX": prefix,
            **TIMINGS,
            # Reports the API could not take during the outage are asked for soon after.
            "NOTIFIER_SMS_POLL_AFTER_SECONDS": "3",
            "NOTIFIER_MOCK_DLR_RETRY_DELAYS": "1,2,4,8",
        }
        with Stack(Path(tmp_path_factory.mktemp("pg-restart")), overrides) as running:
            approved_catalogue("Bank", TEMPLATE)
            yield running


@pytest.mark.scenario
@pytest.mark.timeout(timeout_for() + 60)
def test_postgres_crash_mid_burst_loses_nothing(stack, database):
    down_for = 3.0
    crashed = threading.Event()

    def outage(i: int) -> None:
        if i == BURST // 3:
            database.crash()
            crashed.set()
            threading.Timer(down_for, database.start).start()

    sent = burst(stack, "pg", during=outage, send=send_with_retry)
    assert crashed.is_set() and database.accepts()
    figures = measure(
        stack, f"PostgreSQL crashed, back after {down_for:.0f} s", sent.ids, sent.started
    )
    assert figures.stuck == 0 and figures.push_lost == 0 and figures.sms_lost == 0
    assert figures.push_duplicates == 0 and figures.sms_duplicates == 0
    assert set(figures.final) <= {"delivered", "unconfirmed"}
    assert stack.restarts == 0  # no worker gave up: they waited for the database
