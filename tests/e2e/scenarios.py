"""The fault-suite harness: a burst mixed across policies, and the figures every scenario prints.

Burst size: NOTIFIER_SCENARIO_BURST (300 in CI; `make scenarios` runs 2,000). With
NOTIFIER_SCENARIO_REPORT set, each scenario appends its figures to that file as a JSON line.

What the figures count, from the mocks' own records and the database:
- lost: a delivery recorded as accepted by its provider that the provider never received, or a
  message not final when the scenario gives up (stuck);
- push duplicates: extra copies of one delivery id at APNs (`apns-id`) / FCM (`nid`);
- SMS duplicates: extra submissions of one delivery id (`OutId`) at the carrier;
- unattached: events and attempts whose message or delivery does not exist, deliveries without
  their message, messages without their user. These have no foreign keys (migrations 0011,
  0014, 0016), so every scenario checks what the keys would have.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from notifier import producer
from notifier.demo.stack import Stack
from notifier.store.db import transaction
from notifier.store.models import Attempt, Delivery, Event, Message, User

BURST = int(os.environ.get("NOTIFIER_SCENARIO_BURST", "300"))
FINAL = ("delivered", "unconfirmed", "failed", "expired")
POLICIES = ("push_only", "sms_only", "supplement", "concurrent")
PUSH_OUT = ("sent", "acked", "opened", "unconfirmed")  # the provider said it took it
SMS_OUT = ("submitted", "delivered", "undelivered")
TEMPLATE = {"NOTE": ("notification", "Statement ${n} is ready.")}
# Recovery timings every scenario stack runs with, so a burst settles within the test.
TIMINGS = {
    "NOTIFIER_MAX_COUNTDOWN_SECONDS": "5",
    # Well above the time a batch takes to be claimed, sent and recorded, also on a busy
    # 2-core machine: a shorter lease re-queues batches still being sent (duplicates).
    "NOTIFIER_SENDING_LEASE_SECONDS": "15",
    "NOTIFIER_REPUBLISH_AFTER_SECONDS": "3",
}


def timeout_for(burst: int = BURST) -> float:
    """A per-test time limit that grows with the burst."""
    return 180 + burst * 0.25


def settle_limit(burst: int = BURST) -> float:
    """How long `measure` waits for a burst to settle: a minute short of the test's limit, so
    a burst that never settles is reported (which deliveries are stuck, in what state)
    instead of the test being killed mid-wait."""
    return timeout_for(burst) - 60


@dataclass
class Recipient:
    user: str
    platform: str
    token: str
    phone: str
    online: bool


def recipients(n: int, tag: str) -> list[Recipient]:
    """New users, each with one device (half of them offline) and a phone."""
    people = []
    for i in range(n):
        platform = "apns" if i % 2 else "fcm"
        tok = (
            secrets.token_hex(32)
            if platform == "apns"
            else f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(100)}"
        )
        phone = f"+86139{secrets.randbelow(10**8):08d}"
        people.append(
            Recipient(f"{tag}-{i}-{secrets.token_hex(3)}", platform, tok, phone, i % 3 != 0)
        )
    return people


def prepare(stack: Stack, people: list[Recipient]) -> None:
    for platform in ("apns", "fcm"):
        stack.set_behaviours(
            platform,
            {
                p.token: "online" if p.online else "offline"
                for p in people
                if p.platform == platform
            },
        )
    for p in people:
        producer.bind_device(p.user, p.platform, p.token, p.phone)


def send_one(p: Recipient, i: int, deadline: int = 2, key: str | None = None) -> uuid.UUID:
    return producer.send(
        p.user,
        policy=POLICIES[i % len(POLICIES)],
        push={"title": "Statement", "body": f"#{i}"},
        sms={"template": "NOTE", "params": {"n": str(i)}, "signature": "Bank"},
        receipt_deadline=deadline,
        idempotency_key=key,
    )


def send_with_retry(p: Recipient, i: int, wait: float = 60.0) -> uuid.UUID:
    """As a client would: retry while the service answers 'unavailable', same idempotency key."""
    from notifier.domain.errors import Unavailable

    key, until = f"burst-{p.user}-{i}", time.monotonic() + wait
    while True:
        try:
            return send_one(p, i, key=key)
        except Unavailable:
            if time.monotonic() > until:
                raise
            time.sleep(0.2)


@dataclass
class Figures:
    scenario: str
    messages: int
    settle_seconds: float
    stuck: int
    pushes: int
    push_lost: int
    push_duplicates: int
    sms: int
    sms_lost: int
    sms_duplicates: int
    final: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    unattached: int = 0

    def row(self) -> str:
        return (
            f"{self.scenario}: {self.messages} messages settled in {self.settle_seconds:.1f} s, "
            f"stuck {self.stuck}; push {self.pushes} (lost {self.push_lost}, duplicates "
            f"{self.push_duplicates}); sms {self.sms} (lost {self.sms_lost}, duplicates "
            f"{self.sms_duplicates}); unattached log rows {self.unattached}; final {self.final} "
            f"{self.notes or ''}"
        )


def _states(ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    states: dict[uuid.UUID, str] = {}
    with transaction() as s:
        for chunk in range(0, len(ids), 1000):
            part = ids[chunk : chunk + 1000]
            rows = s.execute(select(Message.id, Message.state).where(Message.id.in_(part)))
            states.update({r.id: r.state for r in rows})
    return states


def settle(ids: list[uuid.UUID], timeout: float) -> dict[uuid.UUID, str]:
    """Wait until every message is final (or the timeout); returns the last states seen."""
    until = time.monotonic() + timeout
    while True:
        states = _states(ids)
        if all(v in FINAL for v in states.values()) or time.monotonic() > until:
            return states
        time.sleep(0.5)


def _deliveries(ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, str, str]]:
    rows: list[tuple[uuid.UUID, str, str]] = []
    with transaction() as s:
        for chunk in range(0, len(ids), 1000):
            part = ids[chunk : chunk + 1000]
            rows += [
                (r.id, r.channel, r.state)
                for r in s.execute(
                    select(Delivery.id, Delivery.channel, Delivery.state).where(
                        Delivery.message_id.in_(part)
                    )
                )
            ]
    return rows


def _orphans(s: Session, rows: Any, key: Any, parent: Any) -> int:
    """Rows of a table whose `key` names no row of the parent (`parent`: its id column)."""
    return int(
        s.scalar(select(func.count()).select_from(rows).where(~exists().where(parent == key))) or 0
    )


def unattached_log_rows() -> int:
    """Events with no message, attempts with no delivery, deliveries with no message and
    messages with no user, in the whole database."""
    with transaction() as s:
        return (
            _orphans(s, Event, Event.message_id, Message.id)
            + _orphans(s, Attempt, Attempt.delivery_id, Delivery.id)
            + _orphans(s, Delivery, Delivery.message_id, Message.id)
            + _orphans(s, Message, Message.user_id, User.id)
        )


def _at(counter: Counter[str], ids: Iterable[uuid.UUID]) -> tuple[int, int]:
    lost = sum(1 for i in ids if counter[str(i)] == 0)
    duplicates = sum(counter[str(i)] - 1 for i in ids if counter[str(i)] > 1)
    return lost, duplicates


def measure(
    stack: Stack,
    scenario: str,
    ids: list[uuid.UUID],
    started: float,
    timeout: float | None = None,
    notes: dict[str, Any] | None = None,
) -> Figures:
    states = settle(ids, timeout or settle_limit(len(ids)))
    settled = time.monotonic() - started
    deliveries = _deliveries(ids)
    pushed = [i for i, ch, st in deliveries if ch == "push" and st in PUSH_OUT]
    texted = [i for i, ch, st in deliveries if ch == "sms" and st in SMS_OUT]
    seen_push: Counter[str] = Counter(
        r["apns_id"] for r in stack.received("apns") if r["status"] == 200
    )
    seen_push.update(r["nid"] for r in stack.received("fcm") if r["status"] == 200)
    seen_sms: Counter[str] = Counter(r["out_id"] for r in stack.received("carrier"))
    push_lost, push_dup = _at(seen_push, pushed)
    sms_lost, sms_dup = _at(seen_sms, texted)
    # An SMS the carrier took but we recorded as never sent would be a silent double later.
    unrecorded = sum(
        1 for i, ch, st in deliveries if ch == "sms" and st not in SMS_OUT and seen_sms[str(i)]
    )
    figures = Figures(
        scenario=scenario,
        messages=len(ids),
        settle_seconds=round(settled, 1),
        stuck=sum(1 for v in states.values() if v not in FINAL),
        pushes=len(pushed),
        push_lost=push_lost,
        push_duplicates=push_dup,
        sms=len(texted),
        sms_lost=sms_lost + unrecorded,
        sms_duplicates=sms_dup,
        final=dict(Counter(states.values())),
        notes=notes or {},
        unattached=unattached_log_rows(),
    )
    stuck = {i for i, v in states.items() if v not in FINAL}
    if stuck:
        with transaction() as s:
            rows = s.execute(
                select(Delivery.channel, Delivery.state).where(Delivery.message_id.in_(stuck))
            )
            figures.notes["stuck deliveries"] = dict(
                Counter(f"{r.channel}:{r.state}" for r in rows)
            )
    report(figures)
    assert figures.unattached == 0, f"{figures.unattached} events/attempts point at no row"
    return figures


def report(figures: Figures) -> None:
    print("\n" + figures.row())
    path = os.environ.get("NOTIFIER_SCENARIO_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({**asdict(figures), "burst": BURST, "at": time.time()}) + "\n")


@dataclass
class Burst:
    ids: list[uuid.UUID]
    started: float
    people: list[Recipient]


def burst(
    stack: Stack,
    tag: str,
    n: int = BURST,
    during: Callable[[int], None] = lambda i: None,
    send: Callable[[Recipient, int], uuid.UUID] = send_one,
    setup: Callable[[list[Recipient]], None] = lambda people: None,
) -> Burst:
    """Bind `n` recipients, then send one message each; `during(i)` runs before message i."""
    people = recipients(n, tag)
    prepare(stack, people)
    setup(people)
    started = time.monotonic()
    ids = []
    for i, p in enumerate(people):
        during(i)
        ids.append(send(p, i))
    return Burst(ids, started, people)
