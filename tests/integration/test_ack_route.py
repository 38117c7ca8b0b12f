"""POST /v1/acks: the plain-ASGI route (api/ack_route.py) answers as the FastAPI route would,
and hands everything but the common case to it."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from notifier import producer
from notifier.api import ack_route
from notifier.api.app import create_app
from notifier.domain import states
from notifier.store import apikeys, claims
from notifier.store.db import transaction
from notifier.store.models import Delivery


def _call(app: Any, key: str, body: bytes) -> tuple[int, Any]:
    """One POST /v1/acks straight through the ASGI app; (status, decoded JSON body)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/acks", "raw_path": b"/v1/acks", "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        "headers": [(b"authorization", f"Bearer {key}".encode()),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(payload)


def _acks(*delivery_ids: Any) -> bytes:
    return json.dumps({"acks": [{"delivery_id": str(d)} for d in delivery_ids]}).encode()


def _pushed(user: str) -> uuid.UUID:
    """A push of `user` that went out (claimed: an ack may move it on)."""
    message_id = producer.send(user, policy="push_only", push={"body": "hi"})
    with transaction() as s:
        delivery_id = s.scalars(select(Delivery.id).where(Delivery.message_id == message_id)).one()
        claims.claim_pushes(s, [delivery_id])
    return delivery_id


def _state(delivery_id: uuid.UUID) -> str:
    with transaction() as s:
        delivery = s.get(Delivery, delivery_id)
        assert delivery is not None
        return delivery.state


@pytest.fixture
def app(migrated: str) -> Any:
    for user in ("ann", "bob"):
        producer.bind_device(user, "apns", uuid.uuid4().hex * 2)
    return create_app()


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The answers the plain route gave itself (it hands the rest to FastAPI's route)."""
    served: list[bytes] = []
    answer = ack_route._answer

    async def spy(*args: Any) -> bytes | None:
        body = await answer(*args)
        if body is not None:
            served.append(body)
        return body

    monkeypatch.setattr(ack_route, "_answer", spy)
    return served


def test_a_seen_key_is_served_by_the_plain_route_with_the_same_answer(app, fast):
    key = apikeys.create_key("ann's app", ["device"], "ann")
    first, second = _pushed("ann"), _pushed("ann")
    assert _call(app, key, _acks(first)) == (200, {"accepted": 1, "ignored": 0})
    assert fast == []  # an unseen key: FastAPI's route looked it up
    assert _call(app, key, _acks(second, second)) == (200, {"accepted": 1, "ignored": 1})
    assert len(fast) == 1
    assert _state(first) == _state(second) == states.ACKED


def test_a_device_key_acks_only_its_users_pushes(app, fast):
    key = apikeys.create_key("ann's app", ["device"], "ann")
    _call(app, key, _acks(_pushed("ann")))
    bobs = _pushed("bob")
    assert _call(app, key, _acks(bobs)) == (200, {"accepted": 0, "ignored": 1})
    assert len(fast) == 1 and _state(bobs) == states.SENDING


@pytest.mark.parametrize(
    "body",
    [
        _acks("not-a-uuid"),
        b'{"acks": [{"delivery_id": "' + str(uuid.uuid4()).encode() + b'", "kind": "read"}]}',
        b'{"acks": "all"}',
        b"[1, 2",
    ],
)
def test_refusals_read_as_on_every_route(app, body):
    """The plain route hands a bad body to FastAPI's route, whose refusal names the field."""
    key = apikeys.create_key("ann's app", ["device"], "ann")
    unseen = _call(app, key, body)
    seen = _call(app, key, body)
    assert unseen == seen and unseen[0] in (400, 422)
    assert unseen[1]["error"]["message"]


def test_a_seen_key_without_the_scope_is_refused(app):
    key = apikeys.create_key("sender", ["send"])
    assert _call(app, key, _acks(uuid.uuid4()))[0] == 403
    assert _call(app, key, _acks(uuid.uuid4()))[0] == 403  # seen now: still refused
