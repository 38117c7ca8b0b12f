import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from notifier.domain.outcomes import Kind
from notifier.providers import fcm
from notifier.providers.push_job import PushJob
from notifier.providers.transport import HttpRequest, HttpResponse

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
ACCOUNT = fcm.ServiceAccount("proj-1", "svc@proj-1.iam.gserviceaccount.com", PEM, "http://t/token")


class FakeTokenEndpoint:
    """In-process stand-in for requests.Session at the OAuth2 token endpoint."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []

    def post(self, url, data, timeout):
        self.calls.append(data)
        outer = self

        class Response:
            def raise_for_status(self) -> None:
                return None

            def json(self):
                return {"access_token": f"tok-{len(outer.calls)}", "expires_in": 3600}

        return Response()


def test_access_token_uses_jwt_bearer_grant_and_is_cached():
    endpoint = FakeTokenEndpoint()
    token = fcm.AccessToken(ACCOUNT, endpoint)  # type: ignore[arg-type]
    assert token.current() == "tok-1"
    assert token.current() == "tok-1"
    assert len(endpoint.calls) == 1
    grant = endpoint.calls[0]
    assert grant["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(
        grant["assertion"], KEY.public_key(), algorithms=["RS256"], audience="http://t/token"
    )
    assert claims["iss"] == ACCOUNT.client_email
    assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    token.invalidate()
    assert token.current() == "tok-2"


def test_message_body_shape():
    job = PushJob(
        "d-1", "fcm", "tok", "T", "B", datetime.now(UTC) + timedelta(seconds=100), {"a": "b"}
    )
    msg = fcm.message_body(job)["message"]
    assert msg["token"] == "tok"
    assert msg["notification"] == {"title": "T", "body": "B"}
    assert msg["data"] == {"a": "b", "nid": "d-1"}
    assert msg["android"]["priority"] == "high"
    assert msg["android"]["ttl"].endswith("s") and 95 <= int(msg["android"]["ttl"][:-1]) <= 100


def test_background_push_is_data_only_and_collapsible():
    expires = datetime.now(UTC) + timedelta(seconds=100)
    job = PushJob("d-1", "fcm", "tok", "", "", expires, background=True, collapse_id="c1")
    msg = fcm.message_body(job)["message"]
    assert "notification" not in msg
    assert msg["android"]["priority"] == "normal" and msg["android"]["collapse_key"] == "c1"
    assert msg["apns"]["headers"]["apns-priority"] == "5"
    assert msg["apns"]["headers"]["apns-push-type"] == "background"
    assert msg["apns"]["payload"] == {"aps": {"content-available": 1}}


def test_request_targets_project_and_bears_token():
    job = PushJob("d-1", "fcm", "tok", "T", "B", datetime.now(UTC) + timedelta(seconds=100))
    req = fcm.build_request("http://mock/", "proj-1", job, "AT")
    assert isinstance(req, HttpRequest)
    assert req.url == "http://mock/v1/projects/proj-1/messages:send"
    assert req.headers["authorization"] == "Bearer AT"


def _err(status: int, code: str, **headers: str) -> HttpResponse:
    body = {
        "error": {
            "code": status,
            "status": code,
            "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
            ],
        }
    }
    return HttpResponse(status, dict(headers), json.dumps(body).encode())


def _bad_request() -> HttpResponse:
    """400 for the request itself: a BadRequest detail names the field (FCM example 1)."""
    violation = {"field": "message.data[0].value", "description": "Invalid value"}
    detail = {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}
    body = {"error": {"code": 400, "status": "INVALID_ARGUMENT", "details": [detail]}}
    return HttpResponse(400, {}, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("response", "kind", "code", "retry_after"),
    [
        (HttpResponse(200, {}, b'{"name": "projects/p/messages/1"}'), Kind.SENT, None, None),
        (_err(404, "UNREGISTERED"), Kind.INVALID_TARGET, "UNREGISTERED", None),
        (_err(403, "SENDER_ID_MISMATCH"), Kind.INVALID_TARGET, "SENDER_ID_MISMATCH", None),
        (_err(400, "INVALID_ARGUMENT"), Kind.INVALID_TARGET, "INVALID_ARGUMENT", None),
        (_bad_request(), Kind.REJECTED, "INVALID_ARGUMENT", None),
        (_err(429, "QUOTA_EXCEEDED"), Kind.RETRY, "QUOTA_EXCEEDED", 60.0),
        (
            _err(429, "QUOTA_EXCEEDED", **{"retry-after": "120"}),
            Kind.RETRY,
            "QUOTA_EXCEEDED",
            120.0,
        ),
        (_err(503, "UNAVAILABLE"), Kind.RETRY, "UNAVAILABLE", None),
        (_err(500, "INTERNAL"), Kind.RETRY, "INTERNAL", None),
        (_err(401, "THIRD_PARTY_AUTH_ERROR"), Kind.RETRY, "THIRD_PARTY_AUTH_ERROR", None),
    ],
)
def test_classify(response, kind, code, retry_after):
    outcome = fcm.classify(response)
    assert (outcome.kind, outcome.error_code, outcome.retry_after) == (kind, code, retry_after)
    if kind is Kind.SENT:
        assert outcome.provider_ref == "projects/p/messages/1"
