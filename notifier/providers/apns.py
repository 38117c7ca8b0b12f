"""APNs provider API: request building, provider-token (JWT ES256) cache, response mapping."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import jwt

from notifier.domain.outcomes import Outcome
from notifier.providers.json_template import HOLES, JsonTemplate, compact, spliced
from notifier.providers.push_job import PushJob
from notifier.providers.transport import HttpRequest, HttpResponse

# "Sending notification requests to APNs": payload limit for regular remote notifications.
MAX_PAYLOAD_BYTES = 4096
# Provider tokens: refresh no more than once every 20 minutes and no less than once every
# 60 minutes; we re-sign at 50 so a token is never near the 1-hour rejection.
TOKEN_REFRESH_SECONDS = 50 * 60
MAX_COLLAPSE_ID_BYTES = 64
TOKEN_MIN_AGE_SECONDS = 20 * 60

INVALID_TARGET_REASONS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"})
TOKEN_REASONS = frozenset({"ExpiredProviderToken", "InvalidProviderToken", "MissingProviderToken"})


@dataclass(frozen=True)
class ApnsCredentials:
    key_pem: str
    key_id: str
    team_id: str
    topic: str


class ProviderToken:
    """The signed bearer token, re-signed on a schedule and never per request."""

    def __init__(
        self, credentials: ApnsCredentials, clock: Callable[[], float] = time.time
    ) -> None:
        self._creds = credentials
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._issued_at = 0.0
        self.signed = 0  # how many tokens this key has signed (APNs limits refreshes)

    def current(self) -> str:
        with self._lock:
            if not self._token or self._clock() - self._issued_at >= TOKEN_REFRESH_SECONDS:
                self._sign()
            return self._token

    def refresh_after_rejection(self) -> bool:
        """Re-sign after APNs refused the token; False if it is too young to replace safely."""
        with self._lock:
            if self._clock() - self._issued_at < TOKEN_MIN_AGE_SECONDS and self._token:
                return False
            self._sign()
            return True

    def _sign(self) -> None:
        now = self._clock()
        self._token = jwt.encode(
            {"iss": self._creds.team_id, "iat": int(now)},
            self._creds.key_pem,
            algorithm="ES256",
            headers={"kid": self._creds.key_id},
        )
        self._issued_at = now
        self.signed += 1


def _document(
    background: bool, title: str, body: str, data: dict[str, str], nid: str
) -> dict[str, object]:
    if background:
        aps: dict[str, object] = {"content-available": 1}
    else:
        alert = {k: v for k, v in (("title", title), ("body", body)) if v}
        aps = {"alert": alert, "sound": "default"}
    # Custom keys sit beside `aps`; `nid` is the delivery id the app acknowledges with.
    return {"aps": aps, **data, "nid": nid}


@lru_cache(maxsize=256)
def _template(
    background: bool, title: str, body: str, data: tuple[tuple[str, str], ...]
) -> JsonTemplate | None:
    return JsonTemplate.of(_document(background, title, body, dict(data), HOLES[0]), 1)


def payload(job: PushJob) -> bytes:
    """The JSON body: encoded once per distinct message, the delivery id spliced in."""
    key = (job.background, job.title, job.body, tuple(job.data.items()))
    return spliced(_template, key, job.delivery_id) or compact(
        _document(job.background, job.title, job.body, job.data, job.delivery_id)
    )


def priority(job: PushJob) -> str:
    """apns-priority: 10 = now, 5 = power-considerate; a background push must use 5
    ("Sending notification requests to APNs", apns-priority)."""
    return "5" if job.background or job.priority == "normal" else "10"


def build_request(base_url: str, job: PushJob, token: str, topic: str) -> HttpRequest | Outcome:
    """The HTTP/2 request for one delivery, or a `rejected` outcome if it can never be sent."""
    body = payload(job)
    if len(body) > MAX_PAYLOAD_BYTES:
        return Outcome.rejected(
            None,
            "PayloadTooLarge",
            f"payload is {len(body)} bytes, APNs allows {MAX_PAYLOAD_BYTES}",
        )
    headers = {
        "authorization": f"bearer {token}",
        "apns-topic": topic,
        "apns-push-type": "background" if job.background else "alert",
        "apns-priority": priority(job),
        # APNs keeps an undeliverable notification until this epoch second (0: not at all).
        "apns-expiration": str(max(int(job.expires_at.timestamp()), 0)),
        # Our delivery id doubles as apns-id, so a resend can be traced end to end.
        "apns-id": job.delivery_id,
        "content-type": "application/json",
    }
    if job.collapse_id:
        if len(job.collapse_id.encode()) > MAX_COLLAPSE_ID_BYTES:
            return Outcome.rejected(None, "BadCollapseId", "apns-collapse-id exceeds 64 bytes")
        headers["apns-collapse-id"] = job.collapse_id
    return HttpRequest("POST", f"{base_url.rstrip('/')}/3/device/{job.token}", headers, body)


def _reason(response: HttpResponse) -> str:
    try:
        return str(json.loads(response.body or b"{}").get("reason", ""))
    except ValueError:
        return ""


def classify(response: HttpResponse) -> Outcome:
    """Map an APNs answer to a classified outcome ("Handling notification responses")."""
    if response.status is None:
        return Outcome.retry(None, "connection", response.error)
    status = response.status
    if status == 200:  # a 200 has no body: nothing to decode
        return Outcome.sent(200, response.headers.get("apns-id"))
    reason = _reason(response)
    if reason in INVALID_TARGET_REASONS or status == 410:
        return Outcome.invalid_target(status, reason or "Unregistered")
    if status == 403 and reason in TOKEN_REASONS:
        return Outcome.retry(status, reason, "provider token refused")
    if status in (429, 500, 503):
        return Outcome.retry(status, reason or f"http_{status}", retry_after=response.retry_after())
    return Outcome.rejected(status, reason or f"http_{status}")
