"""A broadcast through real workers: fanned out in batches, each device reached once, progress
queryable while it runs, every message in its user's inbox."""

from __future__ import annotations

import secrets
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from notifier import producer
from notifier.store.db import transaction
from notifier.store.models import Delivery, Message
from tests.e2e.conftest import wait_for
from tests.e2e.flows import token

AUDIENCE = 240


def test_broadcast_to_a_tagged_segment_reaches_each_device_once(stack):
    tag = f"campaign-{secrets.token_hex(3)}"
    users, tokens = [], {}
    for i in range(AUDIENCE):
        platform = "apns" if i % 2 else "fcm"
        user, tok = f"b-{secrets.token_hex(4)}", token(platform)
        producer.bind_device(user, platform, tok)
        tokens[tok] = platform
        users.append(user)
        if i % 4:  # three in four carry the campaign's tag
            assert stack.api("PUT", f"/v1/users/{user}/tags", json={"tags": [tag]}).ok
    for platform in ("apns", "fcm"):
        stack.set_behaviours(platform, {t: "online" for t, p in tokens.items() if p == platform})
    body = {
        "name": "weekend",
        "segment": {"tags": [tag]},
        "push": {"title": "Sale", "body": "-20%"},
    }
    accepted = stack.api("POST", "/v1/broadcasts", json=body)
    assert accepted.status_code == 202
    planned = AUDIENCE * 3 // 4
    assert accepted.json()["planned"] == planned
    path = f"/v1/broadcasts/{accepted.json()['broadcast_id']}"

    def done() -> dict[str, Any] | None:
        progress = stack.api("GET", path).json()
        return progress if progress["deliveries"].get("acked") == planned else None

    progress = wait_for(done, 60, "every device of the segment to ack")
    assert (progress["state"], progress["enqueued"], progress["sent"]) == (
        "enqueued",
        planned,
        planned,
    )
    seen = Counter(r["token"] for r in stack.received("apns") + stack.received("fcm"))
    tagged = [t for i, t in enumerate(tokens) if i % 4]
    assert [t for t in tagged if seen[t] != 1] == []  # each reached exactly once
    assert [t for i, t in enumerate(tokens) if not i % 4 and seen[t]] == []  # others never
    # each receipt clock started when its push went out, not when the fan-out wrote it
    pushed_at = {
        r["token"]: r["received_at"] for r in stack.received("apns") + stack.received("fcm")
    }
    broadcast_id = uuid.UUID(accepted.json()["broadcast_id"])
    with transaction() as s:
        rows = s.execute(
            select(Delivery.target, Message.receipt_due_at, Message.receipt_deadline_s)
            .join(Message, Message.id == Delivery.message_id)
            .where(Message.broadcast_id == broadcast_id)
        ).all()
    assert len(rows) == planned
    started = {t: due - timedelta(seconds=deadline) for t, due, deadline in rows if due}
    assert len(started) == planned
    assert [t for t, at in started.items() if at.timestamp() < pushed_at[t]] == []
    inbox = stack.api("GET", f"/v1/users/{users[1]}/inbox").json()
    assert [i["title"] for i in inbox["items"]] == ["Sale"]
