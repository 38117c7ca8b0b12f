"""Fault scenarios with real worker processes on PostgreSQL + Redis: `kill -9` mid-burst.

After the kills every message must be final (nothing stuck, nothing lost). Each SMS reaches
the carrier exactly once (the SMS stage looks a message up by our id before any resend). A
push may reach the mock twice only if it was in flight at the instant of a kill: at most one
per worker process per kill.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from notifier import producer
from notifier.demo.stack import Stack, WorkerSpec
from notifier.store.db import transaction
from notifier.store.models import Delivery, Event, Message
from tests.e2e.conftest import FINAL, pg_redis_stack, wait_for
from tests.helpers import approved_catalogue

BURST = 300
KILLS = 3
CONCURRENCY = 2
PUSH = WorkerSpec("push", "push", concurrency=CONCURRENCY)
SMS = WorkerSpec("sms", "sms", concurrency=CONCURRENCY)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {
        # Short enough for a test to see both recovery paths: Redis handing back the
        # unacked task, and the sweep re-queuing a delivery claimed by a dead worker.
        "NOTIFIER_BROKER_VISIBILITY_TIMEOUT": "10",
        "NOTIFIER_MAX_COUNTDOWN_SECONDS": "5",
        "NOTIFIER_SENDING_LEASE_SECONDS": "5",
        "NOTIFIER_REPUBLISH_AFTER_SECONDS": "3",
        "NOTIFIER_MOCK_DEFAULT_BEHAVIOUR": "offline",
        "NOTIFIER_MOCK_DLR_DELAY": "0.1",
        # Slow submits keep SMS in flight when the worker is killed.
        "NOTIFIER_MOCK_CARRIER_LATENCY_MS": "40",
    }
    workers = (PUSH, SMS, WorkerSpec("receipts", "receipts,maintenance", beat=True))
    with pg_redis_stack(Path(tmp_path_factory.mktemp("kills")), overrides, workers) as running:
        approved_catalogue("Bank", {"NOTE": ("notification", "Statement ${n} is ready.")})
        yield running


class Killer(threading.Thread):
    """Kills a worker with SIGKILL every so often while the burst is being sent, and restarts it."""

    def __init__(self, stack: Stack, spec: WorkerSpec, channel: str) -> None:
        super().__init__(daemon=True)
        self.stack, self.spec, self.channel = stack, spec, channel
        self.error: BaseException | None = None
        self.mid_send = 0

    def _wait_for_work_in_flight(self, timeout: float = 3.0) -> None:
        """Aim the kill at a moment when a delivery of this channel is being sent."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with transaction() as s:
                busy = s.scalars(
                    select(Delivery.id)
                    .where(Delivery.channel == self.channel, Delivery.state == "sending")
                    .limit(1)
                ).first()
            if busy is not None:
                self.mid_send += 1
                return
            time.sleep(0.005)

    def run(self) -> None:
        try:
            for _ in range(KILLS):
                time.sleep(0.3)
                self._wait_for_work_in_flight()
                self.stack.kill(f"worker-{self.spec.name}")
                self.stack.start_worker(self.spec)
                self.stack.wait_worker(self.spec.name)
        except BaseException as exc:  # surfaced by finish()
            self.error = exc

    def finish(self) -> None:
        self.join(120)
        if self.error is not None:
            raise self.error


def wait_all_final(ids: list[uuid.UUID], timeout: float = 120) -> dict[uuid.UUID, str]:
    def check() -> dict[uuid.UUID, str] | None:
        with transaction() as s:
            rows = dict(
                s.execute(select(Message.id, Message.state).where(Message.id.in_(ids))).all()
            )
        return rows if all(state in FINAL for state in rows.values()) else None

    try:
        return dict(wait_for(check, timeout, "every message to be final"))
    except AssertionError:
        with transaction() as s:
            stuck = Counter(s.scalars(select(Delivery.state).where(Delivery.message_id.in_(ids))))
        raise AssertionError(f"not final after {timeout}s; deliveries by state: {stuck}") from None


def lease_expiries(ids: list[uuid.UUID]) -> int:
    with transaction() as s:
        kinds = s.scalars(
            select(Event.kind).where(Event.message_id.in_(ids), Event.kind == "lease_expired")
        )
        return len(list(kinds))


def test_kill_9_push_worker_mid_burst(stack):
    killer = Killer(stack, PUSH, "push")
    killer.start()
    ids = []
    for i in range(BURST):
        user = f"k-{secrets.token_hex(4)}"
        producer.bind_device(user, "apns", secrets.token_hex(32))
        ids.append(
            producer.send(user, policy="push_only", push={"body": f"#{i}"}, receipt_deadline=2)
        )
    killer.finish()
    states = wait_all_final(ids)
    assert Counter(states.values()) == {"unconfirmed": BURST}  # offline devices never ack
    with transaction() as s:
        delivery_ids = [
            str(i) for i in s.scalars(select(Delivery.id).where(Delivery.message_id.in_(ids)))
        ]
    seen = Counter(r["apns_id"] for r in stack.received("apns") if r["status"] == 200)
    assert [d for d in delivery_ids if seen[d] == 0] == []  # nothing lost
    duplicates = sum(seen[d] - 1 for d in delivery_ids if seen[d] > 1)
    requeued = lease_expiries(ids)
    print(f"push kills: {killer.mid_send} mid-send, {duplicates} duplicates, {requeued} re-queued")
    assert duplicates <= KILLS * CONCURRENCY  # only what was in flight at a kill


def test_kill_9_sms_worker_mid_burst_sends_each_sms_once(stack):
    killer = Killer(stack, SMS, "sms")
    killer.start()
    ids = []
    for i in range(BURST):
        user = f"s-{secrets.token_hex(4)}"
        producer.bind_phone(user, f"+86136{secrets.randbelow(10**8):08d}")
        sms = {"template": "NOTE", "params": {"n": str(i)}, "signature": "Bank"}
        ids.append(producer.send(user, policy="sms_only", sms=sms))
    killer.finish()
    states = wait_all_final(ids)
    assert Counter(states.values()) == {"delivered": BURST}
    with transaction() as s:
        delivery_ids = [
            str(i) for i in s.scalars(select(Delivery.id).where(Delivery.message_id.in_(ids)))
        ]
    at_carrier = Counter(r["out_id"] for r in stack.received("carrier"))
    print(f"sms kills: {killer.mid_send} mid-send, {lease_expiries(ids)} claims re-queued")
    assert {d: at_carrier[d] for d in delivery_ids if at_carrier[d] != 1} == {}
