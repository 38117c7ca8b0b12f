"""Mock APNs: `POST /3/device/{token}` over HTTP/2 with the real checks and reason bodies."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI, Response
from starlette.types import ASGIApp

from config.settings import Settings, get_settings
from notifier.mock.admin import admin_router
from notifier.mock.config import MockConfig
from notifier.mock.fastpath import Answer, FastRoute, RequestHeaders
from notifier.mock.faults import Faults
from notifier.mock.fleet import (
    DEVICE_BEHAVIOURS,
    Callbacks,
    Recorder,
    Registry,
    device_receipts,
    json_or_none,
)

MAX_PAYLOAD = 4096
TOKEN_MAX_AGE = 3600
PUSH_TYPES = (
    "alert",
    "background",
    "voip",
    "complication",
    "fileprovider",
    "mdm",
    "location",
    "liveactivity",
    "pushtotalk",
)
HEX_TOKEN = re.compile(r"^[0-9a-fA-F]{64,200}$")
# apns-id: "a canonical UUID", five groups of hex digits separated by hyphens (8-4-4-4-12).
# uuid.UUID() would also take braces, a urn: prefix or no hyphens, which APNs refuses.
CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def _public_key() -> Any:
    settings = get_settings()
    if not settings.apns_key_file:
        return None
    private = serialization.load_pem_private_key(Path(settings.apns_key_file).read_bytes(), None)
    return private.public_key()


def _error(
    status: int, reason: str, apns_id: str, retry_after: float | None = None, **extra: Any
) -> Response:
    body = json.dumps({"reason": reason, **extra})
    headers = {"apns-id": apns_id}
    if retry_after is not None:
        headers["retry-after"] = str(int(retry_after))
    return Response(body, status, headers, media_type="application/json")


class VerifiedTokens:
    """Provider tokens whose signature checked out, with their claims.

    A provider reuses one token for up to an hour (Apple refuses fresher tokens as
    TooManyProviderTokenUpdates); checking the same ES256 signature on every request would
    make the mock, not the client, the bottleneck of a load run.
    """

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self.claims: dict[str, dict[str, Any]] = {}

    def get(self, token: str) -> dict[str, Any] | None:
        return self.claims.get(token)

    def add(self, token: str, claims: dict[str, Any]) -> None:
        if len(self.claims) >= self.keep:
            self.claims.pop(next(iter(self.claims)))
        self.claims[token] = claims


def _auth_error(
    header: str | None, public_key: Any, team_id: str, verified: VerifiedTokens
) -> str | None:
    if not header or not header.lower().startswith("bearer "):
        return "MissingProviderToken"
    token = header[7:].strip()
    claims = verified.get(token)
    if claims is None:
        claims_or_error = _verify(token, public_key)
        if isinstance(claims_or_error, str):
            return claims_or_error
        claims = claims_or_error
        verified.add(token, claims)
    if team_id and claims.get("iss") != team_id:
        return "InvalidProviderToken"
    if time.time() - float(claims.get("iat", 0)) > TOKEN_MAX_AGE:
        return "ExpiredProviderToken"
    return None


def _verify(token: str, public_key: Any) -> dict[str, Any] | str:
    """The token's claims if its header and signature are valid, else the APNs reason."""
    try:
        head = jwt.get_unverified_header(token)
        if head.get("alg") != "ES256" or not head.get("kid"):
            return "InvalidProviderToken"
        if public_key is not None:
            claims = jwt.decode(
                token, public_key, algorithms=["ES256"], options={"verify_iat": False}
            )
        else:
            claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return "InvalidProviderToken"
    return dict(claims)


def _header_error(h: RequestHeaders, topic: str) -> str | None:
    if not h.get("apns-topic"):
        return "MissingTopic"
    if topic and h["apns-topic"] != topic:
        return "BadTopic"
    push_type = h.get("apns-push-type", "alert")
    if push_type not in PUSH_TYPES:
        return "InvalidPushType"
    priority = h.get("apns-priority", "10")
    if priority not in ("5", "10", "1") or (push_type == "background" and priority != "5"):
        return "BadPriority"
    if not h.get("apns-expiration", "0").isdigit():
        return "BadExpirationDate"
    if len(h.get("apns-collapse-id", "").encode()) > 64:
        return "BadCollapseId"
    return None


def _refusal(
    headers: RequestHeaders,
    token: str,
    apns_id: str,
    body: bytes,
    public_key: Any,
    settings: Settings,
    verified: VerifiedTokens,
) -> tuple[int, str, float | None] | None:
    """What real APNs would refuse this request with, checked in its order; None if valid."""
    if not CANONICAL_UUID.fullmatch(apns_id):
        return 400, "BadMessageId", None
    if reason := _auth_error(
        headers.get("authorization"), public_key, settings.apns_team_id, verified
    ):
        return 403, reason, None
    if reason := _header_error(headers, settings.apns_topic):
        return 400, reason, None
    if not HEX_TOKEN.match(token):
        return 400, "BadDeviceToken", None
    if not body:
        return 400, "PayloadEmpty", None
    if len(body) > MAX_PAYLOAD:
        return 413, "PayloadTooLarge", None
    return None


def create_app() -> ASGIApp:
    settings, config = get_settings(), MockConfig.from_env()
    public_key = _public_key()
    verified = VerifiedTokens()
    registry = Registry(config.default_behaviour, DEVICE_BEHAVIOURS)
    recorder = Recorder(config.keep_received)
    faults = Faults.from_env()
    acks = Callbacks(
        f"{config.api_url}/v1/acks",
        config.device_key,
        lambda items: {"acks": items},
        batch=500,
    )
    app = FastAPI(title="mock APNs")
    app.include_router(admin_router(registry, recorder, acks, faults))

    async def push(token: str, headers: RequestHeaders, body: bytes) -> Response | Answer:
        """POST /3/device/{token} (served by FastRoute, outside FastAPI's routing)."""
        apns_id = headers.get("apns-id") or str(uuid.uuid4())
        wire = {k: v for k, v in headers.items() if k.startswith("apns-")}
        refusal = _refusal(headers, token, apns_id, body, public_key, settings, verified)
        if refusal is None:
            latency, injected = faults.for_token(token)
            if latency:
                await faults.hold(latency)
            if injected is not None:
                refusal = (injected.status, injected.reason, injected.retry_after)
            elif registry.get(token) == "uninstalled":
                refusal = (410, "Unregistered", None)
        status = refusal[0] if refusal else 200
        doc = json_or_none(body)
        recorder.push(body, "", wire, token=token, apns_id=apns_id, status=status)
        if refusal is not None:
            extra = {"timestamp": int(time.time() * 1000)} if status == 410 else {}
            return _error(refusal[0], refusal[1], apns_id, refusal[2], **extra)
        nid = doc.get("nid") if isinstance(doc, dict) else None
        device_receipts(registry.get(token), nid, acks, config.ack_delay)
        return Answer(200, (("apns-id", apns_id),))

    return FastRoute(app, "POST", r"/3/device/([^/]+)", push)
