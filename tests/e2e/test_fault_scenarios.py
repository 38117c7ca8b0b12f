"""The fault suite on PostgreSQL + Redis with real worker processes (S5 scenarios 1, 2, 5, 6, 7).

Each scenario sends a burst mixed across policies (half the devices offline, so supplement
falls back to SMS), then checks the mocks' records against the database and prints its
figures. Every message must end final; each SMS reaches the carrier exactly once; a push may
reach its provider twice only if it was in flight at the instant of a kill.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from notifier.demo.stack import Stack, WorkerSpec
from notifier.mock.proxy import ProxyFaults, ProxyThread
from notifier.store.db import transaction
from notifier.store.models import Delivery, Event
from tests.e2e.conftest import pg_redis_stack, set_faults
from tests.e2e.scenarios import TEMPLATE, TIMINGS, burst, measure, timeout_for
from tests.helpers import approved_catalogue

KILLS = 3
CONCURRENCY = 2
# A transactional task sends up to this many at once (its own and a top-up from the lane): a
# kill mid-send can leave that many pushes sent but unrecorded, to go again after the lease.
BATCH = 5
PUSH = WorkerSpec("push", "push,push_bulk", concurrency=CONCURRENCY)
SMS = WorkerSpec("sms", "sms,sms_bulk", concurrency=CONCURRENCY)
pytestmark = [pytest.mark.scenario, pytest.mark.timeout(timeout_for())]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {
        **TIMINGS,
        # Short enough for a test to see both recovery paths: Redis handing back the
        # unacked task, and the sweep re-queuing a delivery claimed by a dead worker.
        "NOTIFIER_BROKER_VISIBILITY_TIMEOUT": "10",
        "NOTIFIER_MOCK_DLR_DELAY": "0.1",
        # Slow submits keep SMS in flight when the worker is killed.
        "NOTIFIER_MOCK_CARRIER_LATENCY_MS": "20",
        "NOTIFIER_TRANSACTIONAL_BATCH_MAX": str(BATCH),
    }
    workers = (PUSH, SMS, WorkerSpec("receipts", "receipts,maintenance", beat=True))
    with pg_redis_stack(Path(tmp_path_factory.mktemp("faults")), overrides, workers) as running:
        approved_catalogue("Bank", TEMPLATE)
        yield running


@pytest.fixture(autouse=True)
def clean_mocks(stack: Stack) -> Iterator[None]:
    for mock in ("apns", "fcm", "carrier"):
        stack.clear_received(mock)
    yield
    for mock in ("apns", "fcm"):
        set_faults(stack, mock, [])


class Killer(threading.Thread):
    """SIGKILLs a worker a few times while the burst is sent, each time restarting it."""

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
                time.sleep(0.5)
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


def lease_expiries(ids: list[uuid.UUID]) -> int:
    with transaction() as s:
        return len(
            list(
                s.scalars(
                    select(Event.id).where(Event.message_id.in_(ids), Event.kind == "lease_expired")
                )
            )
        )


@pytest.mark.parametrize(("spec", "channel"), [(PUSH, "push"), (SMS, "sms")], ids=["push", "sms"])
def test_kill_9_a_worker_mid_burst(stack, spec, channel):
    killer = Killer(stack, spec, channel)
    # the kills start once the recipients are bound, when the burst itself begins
    sent = burst(stack, f"kill-{channel}", setup=lambda people: killer.start())
    killer.finish()
    figures = measure(
        stack,
        f"kill -9 {channel} worker x{KILLS}",
        sent.ids,
        sent.started,
        notes={"killed mid-send": killer.mid_send, "re-queued by lease": lease_expiries(sent.ids)},
    )
    assert figures.stuck == 0 and figures.push_lost == 0 and figures.sms_lost == 0
    assert figures.sms_duplicates == 0
    # only what was in flight at a kill: one batch per worker process per kill
    assert figures.push_duplicates <= KILLS * CONCURRENCY * BATCH
    assert set(figures.final) <= {"delivered", "unconfirmed"}


FAULTS: dict[str, list[dict[str, Any]]] = {
    "apns": [
        {"status": 503, "reason": "ServiceUnavailable", "rate": 0.3},
        {"status": 429, "reason": "TooManyRequests", "rate": 0.1, "retry_after": 1},
        {"latency_ms": 30},
    ],
    "fcm": [
        {"status": 503, "reason": "UNAVAILABLE", "rate": 0.3},
        {"status": 429, "reason": "QUOTA_EXCEEDED", "rate": 0.1, "retry_after": 1},
        {"latency_ms": 30},
    ],
}


def test_provider_faults_and_goaways(stack):
    """30 % 5xx, 10 % 429 with Retry-After, added latency, and GOAWAYs in front of APNs."""
    proxy = ProxyThread(stack.ports["apns"], ProxyFaults(goaway_after=40, jitter=0.5, seed=3))
    port = proxy.start()
    stack.env["NOTIFIER_APNS_URL"] = f"http://127.0.0.1:{port}"
    try:
        stack.kill(f"worker-{PUSH.name}")
        stack.start_worker(PUSH)
        stack.wait_worker(PUSH.name)
        for mock, rules in FAULTS.items():
            set_faults(stack, mock, rules)
        sent = burst(stack, "faults")
        figures = measure(stack, "provider faults + GOAWAY", sent.ids, sent.started)
    finally:
        for mock in FAULTS:  # the next scenario meets healthy providers
            set_faults(stack, mock, [])
        stack.env["NOTIFIER_APNS_URL"] = stack.url("apns")
        stack.kill(f"worker-{PUSH.name}")
        stack.start_worker(PUSH)
        stack.wait_worker(PUSH.name)
        proxy.stop()
    assert figures.stuck == 0 and figures.push_lost == 0 and figures.sms_lost == 0
    assert figures.push_duplicates == 0 and figures.sms_duplicates == 0
    assert proxy.proxy.stats.goaways >= 1


def test_crash_between_commit_and_publish_is_swept(stack, monkeypatch):
    """The producer dies after each commit, before publishing: the sweep publishes instead."""
    from notifier.pipeline import publish

    monkeypatch.setattr(publish, "_send", lambda *a, **k: False)
    sent = burst(stack, "crash")
    monkeypatch.undo()
    figures = measure(stack, "crash between commit and publish", sent.ids, sent.started)
    assert figures.stuck == 0 and figures.push_lost == 0 and figures.sms_lost == 0
    assert figures.push_duplicates == 0 and figures.sms_duplicates == 0


def replay_cli(stack: Stack, *args: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-m", "notifier.cli", "replay", "--rate", "0", "--json", *args],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_failed_burst_replayed_twice_is_sent_once(stack):
    """Providers and carrier refuse until the whole burst is dead-lettered; then two replays."""
    set_faults(stack, "apns", [{"status": 503, "reason": "ServiceUnavailable", "rate": 1.0}])
    set_faults(stack, "fcm", [{"status": 503, "reason": "UNAVAILABLE", "rate": 1.0}])
    broke = burst(
        stack,
        "replay",
        setup=lambda people: stack.set_behaviours("carrier", {p.phone: "balance" for p in people}),
    )
    outage = measure(stack, "outage, before replay", broke.ids, broke.started)
    assert outage.stuck == 0 and set(outage.final) == {"failed"}
    assert outage.pushes == outage.sms == 0
    for mock in ("apns", "fcm"):
        set_faults(stack, mock, [])
    stack.set_behaviours("carrier", {p.phone: "delivered" for p in broke.people})
    started = time.monotonic()
    first = replay_cli(stack, "--state", "failed")
    second = replay_cli(stack, "--state", "failed")
    figures = measure(
        stack, "replayed twice after an outage", broke.ids, started, notes={"runs": [first, second]}
    )
    assert first["replayed"] > 0 and second["replayed"] == 0
    assert figures.stuck == 0 and figures.push_lost == 0 and figures.sms_lost == 0
    assert figures.push_duplicates == 0 and figures.sms_duplicates == 0
    assert set(figures.final) <= {"delivered", "unconfirmed"}
