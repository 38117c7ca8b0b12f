"""Fault scenario: the Redis broker is killed mid-burst and comes back empty.

It runs its own Redis on a free port (never the machine's shared one). Messages accepted while
Redis is down are committed and their publish fails (logged); tasks queued in Redis before the
crash are gone with it. The workers reconnect, the sweep re-publishes what was never picked
up, and every message still ends final, each SMS at the carrier exactly once.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from notifier import producer
from notifier.demo.stack import Stack, free_port
from notifier.store.db import transaction
from notifier.store.models import Delivery
from tests.e2e.test_worker_kills import wait_all_final
from tests.helpers import approved_catalogue
from tests.services import fresh_pg_database, service_missing

BURST = 300


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
            "NOTIFIER_MAX_COUNTDOWN_SECONDS": "5",
            "NOTIFIER_SENDING_LEASE_SECONDS": "5",
            "NOTIFIER_REPUBLISH_AFTER_SECONDS": "3",
            "NOTIFIER_MOCK_DEFAULT_BEHAVIOUR": "offline",
        }
        with Stack(Path(tmp_path_factory.mktemp("restart")), overrides) as running:
            approved_catalogue("Bank", {"NOTE": ("notification", "Statement ${n} is ready.")})
            yield running


def send_one(i: int) -> uuid.UUID:
    user = f"r-{secrets.token_hex(4)}"
    if i % 2:
        producer.bind_device(user, "apns", secrets.token_hex(32))
        return producer.send(user, policy="push_only", push={"body": f"#{i}"}, receipt_deadline=2)
    producer.bind_phone(user, f"+86135{secrets.randbelow(10**8):08d}")
    sms = {"template": "NOTE", "params": {"n": str(i)}, "signature": "Bank"}
    return producer.send(user, policy="sms_only", sms=sms)


@pytest.mark.timeout(300)
def test_redis_killed_mid_burst_loses_nothing(stack, broker):
    ids = [send_one(i) for i in range(BURST // 3)]
    broker.kill()
    ids += [send_one(i) for i in range(BURST // 3, BURST // 3 + 10)]  # accepted while it is down
    broker.start()
    ids += [send_one(i) for i in range(BURST // 3 + 10, BURST)]
    states = wait_all_final(ids, timeout=150)
    assert Counter(states.values()) == {"unconfirmed": BURST // 2, "delivered": BURST // 2}
    with transaction() as s:
        sms_ids = [
            str(i)
            for i in s.scalars(
                select(Delivery.id).where(Delivery.message_id.in_(ids), Delivery.channel == "sms")
            )
        ]
    at_carrier = Counter(r["out_id"] for r in stack.received("carrier"))
    assert {d: at_carrier[d] for d in sms_ids if at_carrier[d] != 1} == {}
