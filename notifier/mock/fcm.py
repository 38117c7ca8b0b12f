"""Mock FCM HTTP v1: the OAuth2 token endpoint and `messages:send`, with FCM's error bodies."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI, Form, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from config.settings import get_settings
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
)

MAX_PAYLOAD = 4096
JSON_HEADERS = (("content-type", "application/json"),)
_json_string = json.JSONEncoder().encode  # a str takes the encoder's C fast path
FCM_TOKEN = re.compile(r"^[A-Za-z0-9_:\-]{32,4096}$")
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def fcm_error(
    status: int, error_code: str, message: str, retry_after: float | None = None
) -> JSONResponse:
    """An error body shaped like FCM's: google.rpc.Status with an FcmError detail."""
    detail = {
        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
        "errorCode": error_code,
    }
    body = {
        "error": {
            "code": status,
            "message": message,
            "status": STATUS_NAMES.get(status, ""),
            "details": [detail],
        }
    }
    headers = {"retry-after": str(int(retry_after))} if retry_after is not None else None
    return JSONResponse(body, status, headers)


def bad_request(field: str, description: str) -> JSONResponse:
    """400 for the request itself: a google.rpc.BadRequest detail names the field."""
    violation = {"field": field, "description": description}
    detail = {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}
    body = {
        "error": {
            "code": 400,
            "message": description,
            "status": "INVALID_ARGUMENT",
            "details": [detail],
        }
    }
    return JSONResponse(body, 400)


def _account() -> tuple[str, Any, str] | None:
    settings = get_settings()
    if not settings.fcm_service_account_file:
        return None
    doc = json.loads(Path(settings.fcm_service_account_file).read_text())
    key = serialization.load_pem_private_key(doc["private_key"].encode(), None).public_key()
    return doc["client_email"], key, doc["project_id"]


def _message_error(doc: Any) -> str | None:
    message = doc.get("message") if isinstance(doc, dict) else None
    if not isinstance(message, dict):
        return "missing `message`"
    targets = [k for k in ("token", "topic", "condition") if message.get(k)]
    if len(targets) != 1:
        return "exactly one of message.token, message.topic, message.condition is required"
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return "message.data values must be strings"
    ttl = message.get("android", {}).get("ttl", "0s")
    if not (isinstance(ttl, str) and ttl.endswith("s")):
        return "message.android.ttl must be a duration like '3.5s'"
    return None


def _grant_error(assertion: str, account: tuple[str, Any, str] | None) -> str | None:
    """Why a JWT-bearer assertion is refused, or None when it is good."""
    try:
        if account is not None:
            claims = jwt.decode(
                assertion, account[1], algorithms=["RS256"], options={"verify_aud": False}
            )
            if claims.get("iss") != account[0]:
                return "iss is not the service account"
        else:
            claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        return str(exc)
    if SCOPE not in str(claims.get("scope", "")).split():
        return "scope lacks firebase.messaging"
    return None


def _parse_send(body: bytes) -> dict[str, Any] | JSONResponse:
    if len(body) > MAX_PAYLOAD:
        return bad_request("message", "Message is too big")
    try:
        doc = json.loads(body)
    except ValueError:
        return bad_request("message", "Invalid JSON payload received.")
    if problem := _message_error(doc):
        return bad_request("message", problem)
    token = doc["message"].get("token")
    if token is not None and not FCM_TOKEN.match(str(token)):
        # A malformed token answers with an FcmError detail, not a BadRequest (FCM error codes).
        return fcm_error(
            400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"
        )
    return dict(doc["message"])


def _refusal(
    auth: str, tokens: dict[str, float], account: tuple[str, Any, str] | None, project: str
) -> JSONResponse | None:
    if not auth.startswith("Bearer ") or tokens.get(auth[7:], 0) < time.time():
        return fcm_error(
            401, "THIRD_PARTY_AUTH_ERROR", "Request had invalid authentication credentials."
        )
    if account is not None and project != account[2]:
        return fcm_error(403, "SENDER_ID_MISMATCH", f"no access to project {project}")
    return None


def create_app() -> ASGIApp:
    config = MockConfig.from_env()
    account = _account()
    registry = Registry(config.default_behaviour, DEVICE_BEHAVIOURS)
    recorder = Recorder(config.keep_received)
    faults = Faults.from_env()
    tokens: dict[str, float] = {}
    # Message names unique within this mock's life, from a random start so that two runs'
    # names differ (FCM's own are opaque); a counter costs no syscall, uuid4 read urandom.
    message_numbers = itertools.count(secrets.randbits(62))
    acks = Callbacks(
        f"{config.api_url}/v1/acks", config.device_key, lambda items: {"acks": items}, batch=500
    )
    app = FastAPI(title="mock FCM")
    app.include_router(admin_router(registry, recorder, acks, faults))

    @app.post("/_mock/revoke-tokens")
    def revoke_tokens() -> dict[str, int]:
        """Forget every access token issued, as when Google rotates them early."""
        count = len(tokens)
        tokens.clear()
        return {"revoked": count}

    @app.post("/token")
    def token(grant_type: str = Form(...), assertion: str = Form(...)) -> Response:
        if grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        if problem := _grant_error(assertion, account):
            return JSONResponse({"error": "invalid_grant", "error_description": problem}, 400)
        access = "ya29.mock-" + secrets.token_urlsafe(24)
        tokens[access] = time.time() + 3600
        return JSONResponse({"access_token": access, "expires_in": 3600, "token_type": "Bearer"})

    async def send(project: str, headers: RequestHeaders, body: bytes) -> Response | Answer:
        """POST /v1/projects/{project}/messages:send (served by FastRoute)."""
        refused = _refusal(headers.get("authorization", ""), tokens, account, project)
        if refused is not None:
            return refused
        message = _parse_send(body)
        if isinstance(message, JSONResponse):
            return message
        device = message.get("token", "")
        nid = message.get("data", {}).get("nid")
        latency, injected = faults.for_token(device)
        if latency:
            await faults.hold(latency)
        if injected is not None:
            recorder.push(body, "message", token=device, nid=nid, status=injected.status)
            return fcm_error(
                injected.status, injected.reason, "injected fault", injected.retry_after
            )
        behaviour = registry.get(device)
        if behaviour == "uninstalled":
            recorder.push(body, "message", token=device, nid=nid, status=404)
            return fcm_error(404, "UNREGISTERED", "Requested entity was not found.")
        message_id = f"projects/{project}/messages/{next(message_numbers)}"
        recorder.push(body, "message", token=device, nid=nid, name=message_id, status=200)
        device_receipts(behaviour, nid, acks, config.ack_delay)
        # {"name": ...} spelled out: json.dumps of a dict builds an encoder per call (~2 µs).
        return Answer(200, JSON_HEADERS, f'{{"name":{_json_string(message_id)}}}'.encode())

    return FastRoute(app, "POST", r"/v1/projects/([^/]+)/messages:send", send)
