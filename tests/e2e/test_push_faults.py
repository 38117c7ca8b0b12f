"""A burst of 2,000 pushes through provider errors, GOAWAYs and dropped connections.

The push stage runs in-process against the mocks behind the fault-injecting HTTP/2 proxy. The
mocks record every request they answered with 200: that record is what "reached the device".
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from config.settings import get_settings
from notifier.demo.stack import Stack
from notifier.mock.proxy import ProxyFaults, ProxyThread
from notifier.pipeline.push import send_push
from notifier.providers.gateway import PushGateway
from notifier.providers.transport import Http2Transport
from notifier.store.db import transaction
from notifier.store.models import Delivery, Device, Message, User
from notifier.store.repo import utcnow
from tests.e2e.conftest import set_faults, token

N_PER_PLATFORM = 1000


def seed_burst(n_per_platform: int) -> list[uuid.UUID]:
    """One user with many devices and one push_only message to all of them, written in bulk."""
    now = utcnow()
    user = f"burst-{uuid.uuid4().hex[:8]}"
    message_id = uuid.uuid4()
    devices = [
        {
            "id": uuid.uuid4(),
            "user_id": user,
            "platform": platform,
            "token": token(platform),
            "state": "active",
            "created_at": now,
            "updated_at": now,
        }
        for platform in ("apns", "fcm")
        for _ in range(n_per_platform)
    ]
    ids = [uuid.uuid4() for _ in devices]
    deliveries = [
        {
            "id": delivery_id,
            "message_id": message_id,
            "channel": "push",
            "device_id": d["id"],
            "platform": d["platform"],
            "target": d["token"],
            "state": "queued",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for delivery_id, d in zip(ids, devices, strict=True)
    ]
    with transaction() as s:
        s.add(User(id=user, created_at=now, updated_at=now))
        s.flush()
        s.execute(insert(Device), devices)
        s.add(
            Message(
                id=message_id,
                user_id=user,
                policy="push_only",
                state="accepted",
                push_title="Burst",
                push_body="test",
                push_data={},
                push_options={},
                sms_params={},
                receipt_deadline_s=3600,
                expires_at=now + timedelta(hours=1),
                receipt_due_at=now + timedelta(hours=1),
                created_at=now,
                updated_at=now,
            )
        )
        s.flush()
        s.execute(insert(Delivery), deliveries)
    return ids


def drain(
    ids: list[uuid.UUID], gateway: PushGateway, timeout: float = 90
) -> dict[uuid.UUID, Delivery]:
    """Run the push stage until no delivery is queued: what the Celery retries would do."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = utcnow()
        with transaction() as s:
            rows = list(s.scalars(select(Delivery).where(Delivery.id.in_(ids))))
        due = [d.id for d in rows if d.state == "queued" and (d.next_attempt_at or now) <= now]
        if not any(d.state in ("queued", "sending") for d in rows):
            return {d.id: d for d in rows}
        for start in range(0, len(due), 500):
            send_push(due[start : start + 500], gateway)
        if not due:
            time.sleep(0.05)
    raise AssertionError("deliveries still queued after the timeout")


def accepted(stack: Stack) -> Counter[str]:
    """How often each delivery id was answered 200 by a mock (apns-id / the FCM data nid)."""
    counts: Counter[str] = Counter()
    for item in stack.received("apns"):
        if item["status"] == 200:
            counts[item["apns_id"]] += 1
    for item in stack.received("fcm"):
        if item["status"] == 200:
            counts[item["nid"]] += 1
    return counts


@pytest.fixture
def proxied(
    mocks: Stack, gateway: PushGateway, request: pytest.FixtureRequest
) -> Iterator[tuple[PushGateway, list[ProxyThread]]]:
    faults: ProxyFaults = request.param
    proxies = [ProxyThread(mocks.ports[name], faults) for name in ("apns", "fcm")]
    apns_port, fcm_port = (p.start() for p in proxies)
    settings = get_settings()
    through_proxy = PushGateway(
        Http2Transport(settings.push_concurrency, settings.push_timeout_seconds),
        f"http://127.0.0.1:{apns_port}",
        gateway.apns_creds,
        f"http://127.0.0.1:{fcm_port}",
        gateway.fcm_account,
    )
    yield through_proxy, proxies
    through_proxy.transport.close()
    for p in proxies:
        p.stop()


ERRORS = {
    "apns": [
        {
            "prefix": "",
            "status": 503,
            "reason": "ServiceUnavailable",
            "rate": 0.1,
            "retry_after": 0,
        },
        {"prefix": "", "status": 429, "reason": "TooManyRequests", "rate": 0.111, "retry_after": 0},
    ],
    "fcm": [
        {"prefix": "", "status": 503, "reason": "UNAVAILABLE", "rate": 0.1},
        {"prefix": "", "status": 429, "reason": "QUOTA_EXCEEDED", "rate": 0.111, "retry_after": 0},
    ],
}


def burst_with_errors(
    mocks: Stack, gateway: PushGateway
) -> tuple[list[uuid.UUID], dict[uuid.UUID, Delivery], Counter[str]]:
    """2,000 pushes with 20 % provider errors; the final rows and the mocks' 200 counts."""
    for name, rules in ERRORS.items():
        set_faults(mocks, name, rules)
    ids = seed_burst(N_PER_PLATFORM)
    final = drain(ids, gateway)
    return ids, final, accepted(mocks)


@pytest.mark.parametrize(
    "proxied", [ProxyFaults(goaway_after=150, jitter=0.6, seed=7)], indirect=True
)
def test_errors_and_goaways_deliver_each_push_exactly_once(mocks, proxied):
    gateway, proxies = proxied
    ids, final, counts = burst_with_errors(mocks, gateway)
    states = Counter(d.state for d in final.values())
    assert set(states) <= {"sent", "failed"}, states
    for delivery_id, d in final.items():
        if d.state == "sent":
            assert counts[str(delivery_id)] == 1, (
                f"{delivery_id} reached the mock {counts[str(delivery_id)]} times"
            )
        else:
            assert counts[str(delivery_id)] == 0 and d.error_code, d
    assert states["sent"] >= len(ids) - 5  # 8 attempts at 20 % errors: a failure is rare
    assert sum(p.proxy.stats.goaways for p in proxies) >= 10
    assert sum(p.proxy.stats.refused_streams for p in proxies) > 0


@pytest.mark.parametrize(
    "proxied", [ProxyFaults(drop_after=250, jitter=0.5, seed=11)], indirect=True
)
def test_dropped_connections_lose_nothing_and_duplicate_only_in_flight(mocks, proxied):
    gateway, proxies = proxied
    _, final, counts = burst_with_errors(mocks, gateway)
    assert {d.state for d in final.values()} <= {"sent", "failed"}
    missing = [i for i, d in final.items() if d.state == "sent" and counts[str(i)] == 0]
    assert missing == []  # recorded as sent means the provider has it
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    in_flight = sum(sum(p.proxy.stats.in_flight_at_drops) for p in proxies)
    assert sum(p.proxy.stats.drops for p in proxies) >= 4
    assert duplicates <= in_flight, f"{duplicates} duplicates, only {in_flight} in flight at drops"
