"""Contract tests: the APNs and FCM adapters against the mock servers, for every outcome.

Each test runs the push stage in-process (no Celery) on a mock running as its own process,
and checks both the classification and what was recorded: delivery state, attempt with its
code, device invalidated, retry scheduled.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections import Counter
from typing import Any

import pytest
import requests
from sqlalchemy import select

from notifier import producer
from notifier.demo.stack import Stack
from notifier.pipeline.push import send_push
from notifier.providers import apns
from notifier.providers.transport import Http2Transport, HttpRequest
from notifier.store.db import transaction
from notifier.store.models import Attempt, Delivery, Device, Event
from tests.e2e.conftest import set_faults, token


def push_delivery(platform: str, tok: str | None = None, **push: Any) -> tuple[uuid.UUID, str]:
    tok = tok or token(platform)
    user = f"c-{secrets.token_hex(4)}"
    producer.bind_device(user, platform, tok)
    content = {"title": "Hello", "body": "World", **push}
    message_id = producer.send(user, policy="push_only", push=content)
    with transaction() as s:
        delivery_id = s.scalars(select(Delivery.id).where(Delivery.message_id == message_id)).one()
    return delivery_id, tok


def recorded(delivery_id: uuid.UUID) -> tuple[Delivery, list[Attempt], list[str], str]:
    with transaction() as s:
        d = s.get(Delivery, delivery_id)
        assert d is not None
        attempts = list(s.scalars(select(Attempt).where(Attempt.delivery_id == delivery_id)))
        events = list(s.scalars(select(Event.kind).where(Event.message_id == d.message_id)))
        device = s.get(Device, d.device_id)
        assert device is not None
        return d, attempts, events, device.state


def received(stack: Stack, mock: str, key: str, value: str) -> list[dict[str, Any]]:
    return stack.received(mock, key, value)


# --- APNs ---------------------------------------------------------------------------------


def test_apns_200_sent_with_wire_headers(mocks, gateway):
    delivery_id, tok = push_delivery("apns", collapse_id="stmt-7")
    assert send_push([delivery_id], gateway) == 1
    d, attempts, events, device = recorded(delivery_id)
    assert (d.state, d.provider_ref) == ("sent", str(delivery_id))  # apns-id echoed back
    assert [(a.outcome, a.status_code) for a in attempts] == [("sent", 200)]
    [seen] = received(mocks, "apns", "token", tok)
    assert seen["apns_id"] == str(delivery_id)
    headers = seen["headers"]
    assert headers["apns-topic"] == "com.example.bank"
    assert (headers["apns-push-type"], headers["apns-priority"]) == ("alert", "10")
    assert headers["apns-collapse-id"] == "stmt-7"
    assert int(headers["apns-expiration"]) > time.time()
    assert seen["payload"]["aps"]["alert"] == {"title": "Hello", "body": "World"}
    assert "push_sent" in events and device == "active"


def test_apns_background_push_is_priority_5(mocks, gateway):
    delivery_id, tok = push_delivery("apns", title="", body="", background=True)
    send_push([delivery_id], gateway)
    [seen] = received(mocks, "apns", "token", tok)
    assert (seen["headers"]["apns-push-type"], seen["headers"]["apns-priority"]) == (
        "background",
        "5",
    )
    assert seen["payload"]["aps"] == {"content-available": 1}


@pytest.mark.parametrize(
    ("status", "reason"),
    [(410, "Unregistered"), (400, "BadDeviceToken"), (400, "DeviceTokenNotForTopic")],
)
def test_apns_dead_token_invalidates_device_without_retry(mocks, gateway, status, reason):
    tok = token("apns")
    set_faults(mocks, "apns", [{"prefix": tok, "status": status, "reason": reason, "rate": 1.0}])
    delivery_id, _ = push_delivery("apns", tok)
    send_push([delivery_id], gateway)
    d, attempts, events, device = recorded(delivery_id)
    assert (d.state, d.error_code, device) == ("failed", reason, "invalid")
    assert [(a.outcome, a.status_code, a.error_code) for a in attempts] == [
        ("invalid_target", status, reason)
    ]
    assert "device_invalidated" in events and "retry_scheduled" not in events


@pytest.mark.parametrize(
    ("status", "reason"),
    [(429, "TooManyRequests"), (500, "InternalServerError"), (503, "ServiceUnavailable")],
)
def test_apns_transient_errors_schedule_a_retry(mocks, gateway, status, reason):
    tok = token("apns")
    rule = {"prefix": tok, "status": status, "reason": reason, "rate": 1.0, "retry_after": 3}
    set_faults(mocks, "apns", [rule])
    delivery_id, _ = push_delivery("apns", tok)
    before = time.time()
    send_push([delivery_id], gateway)
    d, attempts, events, device = recorded(delivery_id)
    assert (d.state, d.error_code, device) == ("queued", reason, "active")
    assert (
        d.next_attempt_at is not None and d.next_attempt_at.timestamp() >= before + 3
    )  # Retry-After
    assert [(a.outcome, a.status_code) for a in attempts] == [("retry", status)]
    assert "retry_scheduled" in events


def test_apns_oversized_payload_refused_before_sending(mocks, gateway):
    delivery_id, tok = push_delivery("apns", data={f"k{i}": "x" * 300 for i in range(14)})
    send_push([delivery_id], gateway)
    d, attempts, _, _ = recorded(delivery_id)
    assert (d.state, d.error_code) == ("failed", "PayloadTooLarge")
    assert "bytes, APNs allows 4096" in (attempts[0].detail or "")
    assert received(mocks, "apns", "token", tok) == []


def test_apns_expired_provider_token_is_refreshed_once(mocks, gateway):
    # Our clock runs 20 minutes behind APNs': a token we think is 45 minutes old is 65 minutes
    # old to APNs, which answers 403 ExpiredProviderToken; it is old enough to re-sign at once.
    clock = {"now": time.time() - 65 * 60}
    assert gateway.apns_creds is not None
    gateway.apns_token = apns.ProviderToken(gateway.apns_creds, lambda: clock["now"])
    gateway.apns_token.current()
    clock["now"] = time.time() - 20 * 60
    delivery_id, tok = push_delivery("apns")
    send_push([delivery_id], gateway)
    d, attempts, _, _ = recorded(delivery_id)
    assert d.state == "sent"
    assert [r["status"] for r in received(mocks, "apns", "token", tok)] == [403, 200]
    assert gateway.apns_token.signed == 2
    assert [a.outcome for a in attempts] == ["sent"]


# --- FCM ----------------------------------------------------------------------------------


def test_fcm_200_sent_records_name(mocks, gateway):
    delivery_id, tok = push_delivery("fcm", collapse_id="stmt-7")
    send_push([delivery_id], gateway)
    d, _, _, _ = recorded(delivery_id)
    [seen] = received(mocks, "fcm", "token", tok)
    assert d.state == "sent" and d.provider_ref == seen["name"]
    assert seen["name"].startswith("projects/demo-project/messages/")
    message = seen["payload"]
    assert message["data"]["nid"] == str(delivery_id)
    assert message["android"]["collapse_key"] == "stmt-7"
    assert message["android"]["priority"] == "high" and message["android"]["ttl"].endswith("s")


@pytest.mark.parametrize(("status", "code"), [(404, "UNREGISTERED"), (400, "INVALID_ARGUMENT")])
def test_fcm_dead_token_invalidates_device(mocks, gateway, status, code):
    tok = token("fcm")
    set_faults(mocks, "fcm", [{"prefix": tok, "status": status, "reason": code, "rate": 1.0}])
    delivery_id, _ = push_delivery("fcm", tok)
    send_push([delivery_id], gateway)
    d, attempts, _, device = recorded(delivery_id)
    assert (d.state, d.error_code, device) == ("failed", code, "invalid")
    assert [(a.outcome, a.status_code) for a in attempts] == [("invalid_target", status)]


@pytest.mark.parametrize(
    ("status", "code", "retry_after", "at_least"),
    [
        (429, "QUOTA_EXCEEDED", 2, 2),
        (429, "QUOTA_EXCEEDED", None, 60),
        (503, "UNAVAILABLE", None, 0),
        (500, "INTERNAL", None, 0),
    ],
)
def test_fcm_transient_errors_schedule_a_retry(mocks, gateway, status, code, retry_after, at_least):
    tok = token("fcm")
    rule = {
        "prefix": tok,
        "status": status,
        "reason": code,
        "rate": 1.0,
        "retry_after": retry_after,
    }
    set_faults(mocks, "fcm", [rule])
    delivery_id, _ = push_delivery("fcm", tok)
    before = time.time()
    send_push([delivery_id], gateway)
    d, attempts, _, _ = recorded(delivery_id)
    assert (d.state, d.error_code) == ("queued", code)
    assert d.next_attempt_at is not None and d.next_attempt_at.timestamp() >= before + at_least
    assert [(a.outcome, a.status_code) for a in attempts] == [("retry", status)]


def test_fcm_401_refreshes_the_access_token_once(mocks, gateway):
    first, _ = push_delivery("fcm")
    send_push([first], gateway)  # obtains and caches an access token
    requests.post(f"{mocks.url('fcm')}/_mock/revoke-tokens", timeout=5).raise_for_status()
    delivery_id, tok = push_delivery("fcm")
    send_push([delivery_id], gateway)
    d, attempts, _, _ = recorded(delivery_id)
    assert d.state == "sent"
    assert [r["status"] for r in received(mocks, "fcm", "token", tok)] == [200]  # 401 came before
    assert [a.outcome for a in attempts] == ["sent"]


def test_fcm_background_is_data_only(mocks, gateway):
    delivery_id, tok = push_delivery("fcm", title="", body="", background=True)
    send_push([delivery_id], gateway)
    [seen] = received(mocks, "fcm", "token", tok)
    assert "notification" not in seen["payload"]
    assert seen["payload"]["android"]["priority"] == "normal"


def test_a_batch_goes_out_concurrently(mocks, gateway):
    """Latency is hidden by streams in flight: 50 pushes at 200 ms each take far less than 10 s."""
    set_faults(mocks, "apns", [{"prefix": "", "latency_ms": 200}])
    ids = [push_delivery("apns")[0] for _ in range(50)]
    started = time.monotonic()
    send_push(ids, gateway)
    elapsed = time.monotonic() - started
    with transaction() as s:
        states = Counter(s.scalars(select(Delivery.state).where(Delivery.id.in_(ids))))
    assert states == {"sent": 50}
    assert elapsed < 5, f"50 pushes with 200 ms latency took {elapsed:.1f}s: not concurrent"


def test_a_batch_larger_than_libcurl_s_default_stream_limit_is_all_in_flight(mocks, gateway):
    """libcurl opens 100 streams on a connection unless told more: 300 pushes must be held
    by the provider at once, not in rounds of 100."""
    set_faults(mocks, "apns", [{"prefix": "", "latency_ms": 300}])
    ids = [push_delivery("apns")[0] for _ in range(300)]
    send_push(ids, gateway)
    stats = requests.get(f"{mocks.url('apns')}/_mock/stats", timeout=5).json()
    assert stats["peak_held"] == 300


def test_a_reused_curl_handle_takes_each_request_s_own_method(mocks):
    """Easy handles are reused between requests: a GET after a POST must go out as a GET."""
    transport = Http2Transport(max_in_flight=1, timeout=5)
    try:
        post = HttpRequest("POST", f"{mocks.url('apns')}/3/device/{'ab' * 32}", {}, b"{}")
        get = HttpRequest("GET", f"{mocks.url('apns')}/_mock/health", {})
        posted, got = transport.perform([post]), transport.perform([get])
    finally:
        transport.close()
    assert posted[0].status == 403  # no provider token: refused, but a POST route answered
    assert got[0].status == 200
