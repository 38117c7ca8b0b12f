import itertools
import json
from datetime import UTC, datetime

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notifier.domain.outcomes import Kind
from notifier.providers import apns
from notifier.providers.push_job import PushJob
from notifier.providers.transport import HttpRequest, HttpResponse

KEY = ec.generate_private_key(ec.SECP256R1())
PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
CREDS = apns.ApnsCredentials(PEM, "KEY1234567", "TEAM123456", "com.example.app")
JOB = PushJob(
    "0b6f6c2e-8f4e-4c55-9d55-0c1f3f0e9d11",
    "apns",
    "ab" * 32,
    "Title",
    "Body",
    datetime(2030, 1, 1, tzinfo=UTC),
    {"k": "v"},
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_request_carries_the_apns_headers_and_payload():
    req = apns.build_request("http://mock:1/", JOB, "TOKEN", CREDS.topic)
    assert isinstance(req, HttpRequest)
    assert req.url == f"http://mock:1/3/device/{'ab' * 32}"
    h = req.headers
    assert h["authorization"] == "bearer TOKEN"
    assert h["apns-topic"] == "com.example.app"
    assert h["apns-push-type"] == "alert"
    assert h["apns-priority"] == "10"
    assert h["apns-expiration"] == str(int(JOB.expires_at.timestamp()))
    assert h["apns-id"] == JOB.delivery_id
    body = json.loads(req.body)
    assert body["aps"]["alert"] == {"title": "Title", "body": "Body"}
    assert body["nid"] == JOB.delivery_id and body["k"] == "v"


def test_background_push_uses_priority_5_and_content_available():
    job = PushJob(JOB.delivery_id, "apns", JOB.token, "", "", JOB.expires_at, background=True)
    req = apns.build_request("http://m", job, "T", "topic")
    assert isinstance(req, HttpRequest)
    assert req.headers["apns-push-type"] == "background"
    assert req.headers["apns-priority"] == "5"
    assert json.loads(req.body)["aps"] == {"content-available": 1}


def test_collapse_id_header_and_its_64_byte_limit():
    job = PushJob(
        JOB.delivery_id, "apns", JOB.token, "t", "b", JOB.expires_at, collapse_id="x" * 64
    )
    req = apns.build_request("http://m", job, "T", "topic")
    assert isinstance(req, HttpRequest) and req.headers["apns-collapse-id"] == "x" * 64
    long = PushJob(
        JOB.delivery_id, "apns", JOB.token, "t", "b", JOB.expires_at, collapse_id="é" * 33
    )
    refused = apns.build_request("http://m", long, "T", "topic")
    assert not isinstance(refused, HttpRequest) and refused.error_code == "BadCollapseId"


def test_normal_priority_alert():
    job = PushJob(JOB.delivery_id, "apns", JOB.token, "t", "b", JOB.expires_at, priority="normal")
    req = apns.build_request("http://m", job, "T", "topic")
    assert isinstance(req, HttpRequest) and req.headers["apns-priority"] == "5"


def test_oversized_payload_refused_before_sending_with_size():
    big = PushJob(JOB.delivery_id, "apns", JOB.token, "t", "x" * 5000, JOB.expires_at)
    outcome = apns.build_request("http://m", big, "T", "topic")
    assert not hasattr(outcome, "url")
    assert outcome.kind is Kind.REJECTED and outcome.error_code == "PayloadTooLarge"
    assert "bytes" in (outcome.detail or "")


def _resp(status: int, reason: str = "", **headers: str) -> HttpResponse:
    body = json.dumps({"reason": reason}).encode() if reason else b""
    return HttpResponse(status, dict(headers), body)


@pytest.mark.parametrize(
    ("response", "kind", "code"),
    [
        (_resp(200, **{"apns-id": "abc"}), Kind.SENT, None),
        (_resp(410, "Unregistered"), Kind.INVALID_TARGET, "Unregistered"),
        (_resp(400, "BadDeviceToken"), Kind.INVALID_TARGET, "BadDeviceToken"),
        (_resp(400, "DeviceTokenNotForTopic"), Kind.INVALID_TARGET, "DeviceTokenNotForTopic"),
        (_resp(413, "PayloadTooLarge"), Kind.REJECTED, "PayloadTooLarge"),
        (_resp(400, "BadTopic"), Kind.REJECTED, "BadTopic"),
        (_resp(429, "TooManyRequests"), Kind.RETRY, "TooManyRequests"),
        (_resp(500, "InternalServerError"), Kind.RETRY, "InternalServerError"),
        (
            _resp(503, "ServiceUnavailable", **{"retry-after": "7"}),
            Kind.RETRY,
            "ServiceUnavailable",
        ),
        (_resp(403, "ExpiredProviderToken"), Kind.RETRY, "ExpiredProviderToken"),
        (HttpResponse(None, error="reset"), Kind.RETRY, "connection"),
    ],
)
def test_classify(response, kind, code):
    outcome = apns.classify(response)
    assert outcome.kind is kind
    assert outcome.error_code == code


def test_retry_after_is_read():
    assert (
        apns.classify(_resp(503, "ServiceUnavailable", **{"retry-after": "7"})).retry_after == 7.0
    )


def test_provider_token_is_es256_with_kid_and_cached():
    clock = Clock()
    token = apns.ProviderToken(CREDS, clock)
    first = token.current()
    header = jwt.get_unverified_header(first)
    assert header == {"alg": "ES256", "kid": "KEY1234567", "typ": "JWT"}
    claims = jwt.decode(first, KEY.public_key(), algorithms=["ES256"])
    assert claims == {"iss": "TEAM123456", "iat": int(clock.now)}
    clock.now += 49 * 60
    assert token.current() == first  # never re-signed per request
    clock.now += 2 * 60
    assert token.current() != first  # re-signed before the 60-minute limit


def test_refresh_after_rejection_respects_the_20_minute_floor():
    clock = Clock()
    token = apns.ProviderToken(CREDS, clock)
    first = token.current()
    clock.now += 60
    assert token.refresh_after_rejection() is False
    assert token.current() == first
    clock.now += 20 * 60
    assert token.refresh_after_rejection() is True
    assert token.current() != first


def test_a_day_of_traffic_signs_at_most_once_per_20_minutes():
    """A request every 10 s for 24 h, and APNs refusing the token every 7 minutes."""
    clock = Clock()
    token = apns.ProviderToken(CREDS, clock)
    signed_at: list[float] = []
    last = ""
    start = clock.now
    while clock.now < start + 24 * 3600:
        if int(clock.now - start) % 420 == 0:
            token.refresh_after_rejection()
        current = token.current()
        if current != last:
            signed_at.append(clock.now)
            last = current
        clock.now += 10
    gaps = [b - a for a, b in itertools.pairwise(signed_at)]
    assert token.signed == len(signed_at)
    assert min(gaps) >= 20 * 60  # never more often than APNs allows
    assert max(gaps) < 60 * 60  # never a token near the 1-hour limit
    assert len(signed_at) <= 24 * 3 + 1
