"""FCM HTTP v1: service-account OAuth2 token cache, message JSON, response mapping."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jwt
import requests

from notifier.domain.outcomes import Outcome
from notifier.providers.apns import priority as apns_priority
from notifier.providers.json_template import HOLES, JsonTemplate, compact, spliced
from notifier.providers.push_job import PushJob
from notifier.providers.transport import HttpRequest, HttpResponse

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Renew this long before `expires_in` runs out so no request carries a token about to lapse.
TOKEN_EARLY_RENEW_SECONDS = 300
# "throttling-and-quotas": after QUOTA_EXCEEDED honour Retry-After; without one, wait a minute.
QUOTA_MIN_RETRY_SECONDS = 60.0
MAX_PAYLOAD_BYTES = 4096


@dataclass(frozen=True)
class ServiceAccount:
    project_id: str
    client_email: str
    private_key: str
    token_uri: str

    @classmethod
    def from_json(cls, raw: str) -> ServiceAccount:
        doc = json.loads(raw)
        return cls(doc["project_id"], doc["client_email"], doc["private_key"], doc["token_uri"])


class AccessToken:
    """OAuth2 access token from the JWT-bearer grant, cached until shortly before it expires."""

    def __init__(self, account: ServiceAccount, session: requests.Session | None = None) -> None:
        self._account = account
        self._http = session or requests.Session()
        self._lock = threading.Lock()
        self._token = ""
        self._valid_until = 0.0

    def current(self) -> str:
        with self._lock:
            if not self._token or time.time() >= self._valid_until:
                self._fetch()
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = ""

    def _fetch(self) -> None:
        now = int(time.time())
        assertion = jwt.encode(
            {
                "iss": self._account.client_email,
                "scope": SCOPE,
                "aud": self._account.token_uri,
                "iat": now,
                "exp": now + 3600,
            },
            self._account.private_key,
            algorithm="RS256",
        )
        response = self._http.post(
            self._account.token_uri,
            data={"grant_type": GRANT_TYPE, "assertion": assertion},
            timeout=10,
        )
        response.raise_for_status()
        doc = response.json()
        self._token = str(doc["access_token"])
        lifetime = float(doc.get("expires_in", 3600))
        self._valid_until = now + max(lifetime - TOKEN_EARLY_RENEW_SECONDS, lifetime / 2)


def message_body(job: PushJob) -> dict[str, Any]:
    """FCM v1 Message: a data-only message for background pushes, with per-platform overrides
    (Android priority/ttl/collapse_key; APNs headers for iOS devices reached through FCM)."""
    return _message(job, _ttl(job), job.token, job.delivery_id)


def _ttl(job: PushJob) -> int:
    return max(int((job.expires_at - datetime.now(UTC)).total_seconds()), 0)


def _message(job: PushJob, ttl: int, token: str, nid: str) -> dict[str, Any]:
    android: dict[str, Any] = {
        "priority": "normal" if job.background or job.priority == "normal" else "high",
        "ttl": f"{ttl}s",  # a Duration in seconds, e.g. "3.5s"
    }
    apns_headers = {
        "apns-expiration": str(int(job.expires_at.timestamp())),
        "apns-priority": apns_priority(job),
        "apns-push-type": "background" if job.background else "alert",
    }
    if job.collapse_id:
        android["collapse_key"] = job.collapse_id
        apns_headers["apns-collapse-id"] = job.collapse_id
    message: dict[str, Any] = {
        "token": token,
        # `data` values must be strings (FCM v1 Message.data is map<string, string>).
        "data": {**job.data, "nid": nid},
        "android": android,
        "apns": {"headers": apns_headers},
    }
    if not job.background:
        message["notification"] = {k: v for k, v in (("title", job.title), ("body", job.body)) if v}
    else:
        message["apns"]["payload"] = {"aps": {"content-available": 1}}
    return {"message": message}


@lru_cache(maxsize=256)
def _template(
    shape: tuple[bool, str, str | None, datetime, str, str, tuple[tuple[str, str], ...]], ttl: int
) -> JsonTemplate | None:
    background, priority, collapse_id, expires_at, title, body, data = shape
    shared = PushJob("", "fcm", "", title, body, expires_at, dict(data), collapse_id,
                     background, priority)  # fmt: skip
    return JsonTemplate.of(_message(shared, ttl, HOLES[0], HOLES[1]), 2)


def encoded(job: PushJob) -> bytes:
    """The request body: encoded once per distinct message and second of ttl, with the
    device token and the delivery id spliced in."""
    ttl = _ttl(job)
    shape = (job.background, job.priority, job.collapse_id, job.expires_at, job.title,
             job.body, tuple(job.data.items()))  # fmt: skip
    return spliced(_template, (shape, ttl), job.token, job.delivery_id) or compact(
        _message(job, ttl, job.token, job.delivery_id)
    )


def build_request(
    base_url: str, project_id: str, job: PushJob, token: str
) -> HttpRequest | Outcome:
    body = encoded(job)
    if len(body) > MAX_PAYLOAD_BYTES:
        return Outcome.rejected(
            None,
            "INVALID_ARGUMENT",
            f"message is {len(body)} bytes, FCM allows {MAX_PAYLOAD_BYTES}",
        )
    url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    return HttpRequest("POST", url, headers, body)


BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


def _error(response: HttpResponse) -> tuple[str, bool]:
    """The FCM error code, and whether the request (not the token) was at fault.

    An invalid token and an invalid payload both answer 400 INVALID_ARGUMENT; only the detail
    type tells them apart: FcmError for the token, google.rpc.BadRequest (with field
    violations) for the request ("FCM error codes", HTTP v1 examples 1 and 2).
    """
    try:
        error = json.loads(response.body or b"{}").get("error", {})
    except ValueError:
        return f"http_{response.status}", False
    details = [d for d in error.get("details", []) if isinstance(d, dict)]
    request_fault = any(d.get("@type") == BAD_REQUEST for d in details)
    for detail in details:
        if detail.get("errorCode"):
            return str(detail["errorCode"]), request_fault
    return str(error.get("status") or f"http_{response.status}"), request_fault


def classify(response: HttpResponse) -> Outcome:
    """Map an FCM v1 answer to a classified outcome (FCM ErrorCode reference)."""
    if response.status is None:
        return Outcome.retry(None, "connection", response.error)
    status = response.status
    if status == 200:
        name = json.loads(response.body).get("name")
        return Outcome.sent(200, str(name) if name else None)
    code, request_fault = _error(response)
    if code in ("UNREGISTERED", "SENDER_ID_MISMATCH") or status == 404:
        return Outcome.invalid_target(status, code)
    if code == "INVALID_ARGUMENT" and not request_fault:
        return Outcome.invalid_target(status, code, "the registration token is not valid")
    if status == 429 or code == "QUOTA_EXCEEDED":
        wait = response.retry_after()
        return Outcome.retry(
            status, code, retry_after=QUOTA_MIN_RETRY_SECONDS if wait is None else wait
        )
    if status in (401, 500, 503) or code in ("UNAVAILABLE", "INTERNAL", "THIRD_PARTY_AUTH_ERROR"):
        return Outcome.retry(status, code, retry_after=response.retry_after())
    return Outcome.rejected(status, code)
