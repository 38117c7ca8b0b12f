"""Fault scenario: the Redis broker is killed mid-burst and comes back empty.

It runs its own Redis on a free port (never the machine's shared one). Messages accepted while
Redis is down are committed and their publish fails (logged); tasks queued in Redis before the
crash are gone with it. The workers reconnect, the sweep re-publishes what was never picked
up, and every message still ends final, each SMS at the carrier exactly once.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from notifier.demo.stack import Stack, free_port
from tests.e2e.scenarios import BURST, TEMPLATE, TIMINGS, burst, measure, timeout_for
from tests.helpers import approved_catalogue
from tests.services import fresh_pg_database, service_missing


class PrivateRedis:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("redis-server binary", FileNotFoundError("redis-server"))
            raise AssertionError("unreachable")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                if client.ping():
                    client.close()
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # SIGKILL: nothing is kept, as Redis without persistence
            self.process.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(Path(tmp_path_factory.mktemp("redis")))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def stack(broker: PrivateRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with fresh_pg_database() as db_url:
        overrides = {
            "NOTIFIER_DATABASE_URL": db_url,
            "NOTIFIER_BROKER_URL": broker.url,
            "NOTIFIER_BROKER_VISIBILITY_TIMEOUT": "10",
            **TIMINGS,
        }
        with Stack(Path(tmp_path_factory.mktemp("restart")), overrides) as running:
            approved_catalogue("Bank", TEMPLATE)
            yield running


@pytest.mark.scenario
@pytest.mark.timeout(timeout_for() + 60)
def test_redis_killed_mid_burst_loses_nothing(stack, broker):
    down_at = BURST // 3

    def outage(i: int) -> None:
        if i == down_at:
            broker.kill()
        elif i == down_at + 10:  # ten messages are accepted while it is down
            broker.start()

    sent = burst(stack, "redis", during=outage)
    figures = measure(stack, "Redis killed and restarted empty", sent.ids, sent.started)
    assert figures.stuck == 0 and figures.push_lost == 0 and figures.sms_lost == 0
    assert figures.push_duplicates == 0 and figures.sms_duplicates == 0
    assert set(figures.final) <= {"delivered", "unconfirmed"}
