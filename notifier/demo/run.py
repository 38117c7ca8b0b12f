"""`notifier demo`: a fleet of users, messages under supplement and concurrent, one table.

The demo exits 0 only when every message ended where its device kind says it must:
online → the push is acked (and, under concurrent, the SMS is delivered too);
offline → no ack, exactly one SMS after the deadline; uninstalled → the device is invalidated
and the SMS goes out; phone-only → straight to SMS.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from config.settings import get_settings
from notifier.demo.stack import Stack
from notifier.domain import states
from notifier.store.db import transaction
from notifier.store.models import Delivery, Device, Message

KINDS = ("online", "offline", "uninstalled", "phone-only")
POLICIES = ("supplement", "concurrent")
TEMPLATE = "ACCOUNT_NOTICE"
SIGNATURE = "DemoBank"
TEMPLATES = {
    TEMPLATE: "Account ${account}: a statement of ${amount} is ready in the app.",
    # The security notices (NOTIFIER_SECURITY_NOTICE_TEMPLATE / _MOVED_TEMPLATE).
    "security.device_linked": "A new ${platform} device was linked to your account at ${time}. "
    "If this was not you, call us now.",
    "security.device_moved": "A device was unlinked from your account at ${time} and linked "
    "to another one. If this was not you, call us now.",
}


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    kind: str
    platform: str | None
    token: str | None
    phone: str


def make_fleet(per_kind: int) -> list[DemoUser]:
    run = secrets.token_hex(3)  # user ids unique per run: a shared database may hold earlier runs
    users = []
    for kind in KINDS:
        for i in range(per_kind):
            platform = None if kind == "phone-only" else ("apns", "fcm")[i % 2]
            token = None
            if platform == "apns":
                token = secrets.token_hex(32)
            elif platform == "fcm":
                token = f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(100)}"
            phone = f"+86138{secrets.randbelow(10**8):08d}"
            users.append(DemoUser(f"{kind}-{i}-{run}", kind, platform, token, phone))
    return users


def seed_catalogue() -> None:
    """An approved signature and template (kept if an earlier run on this database made them)."""
    from notifier import catalog
    from notifier.domain.errors import Conflict

    with contextlib.suppress(Conflict):
        catalog.add_signature(SIGNATURE)
    catalog.review("signature", SIGNATURE, approve=True)
    for code, content in TEMPLATES.items():
        with contextlib.suppress(Conflict):
            catalog.add_template(code, "notification", content)
        catalog.review("template", code, approve=True)


def bind_fleet(stack: Stack, users: list[DemoUser]) -> None:
    for platform in ("apns", "fcm"):
        stack.set_behaviours(
            platform, {u.token: u.kind for u in users if u.platform == platform and u.token}
        )
    for u in users:
        if u.token:
            body = {
                "user_id": u.user_id,
                "platform": u.platform,
                "token": u.token,
                "phone": u.phone,
            }
            stack.api("POST", "/v1/devices", "device", json=body).raise_for_status()
        else:
            stack.api(
                "PUT", f"/v1/users/{u.user_id}/phone", json={"phone": u.phone}
            ).raise_for_status()


def send_all(stack: Stack, users: list[DemoUser], deadline: int) -> dict[str, tuple[str, str]]:
    """Send one message per user and policy; returns message id → (policy, device kind)."""
    sent: dict[str, tuple[str, str]] = {}
    for policy in POLICIES:
        for u in users:
            body = {
                "user_id": u.user_id,
                "policy": policy,
                "push": {"title": "New statement", "body": "Your monthly statement is ready."},
                "sms": {
                    "template": TEMPLATE,
                    "params": {"account": f"{1000 + len(sent)}", "amount": "42.00"},
                    "signature": SIGNATURE,
                },
                "receipt_deadline": deadline,
                "idempotency_key": f"demo-{policy}-{u.user_id}",
            }
            response = stack.api("POST", "/v1/messages", json=body)
            response.raise_for_status()
            sent[response.json()["message_id"]] = (policy, u.kind)
    return sent


def snapshot(ids: list[str]) -> tuple[dict[str, str], dict[str, list[tuple[str, str]]], set[str]]:
    """Message states, each message's (channel, state) deliveries, and invalidated tokens."""
    keys = [uuid.UUID(i) for i in ids]
    with transaction() as session:
        msg_states = {
            str(m.id): m.state for m in session.scalars(select(Message).where(Message.id.in_(keys)))
        }
        deliveries: dict[str, list[tuple[str, str]]] = {}
        for d in session.scalars(select(Delivery).where(Delivery.message_id.in_(keys))):
            deliveries.setdefault(str(d.message_id), []).append((d.channel, d.state))
        invalid = set(session.scalars(select(Device.token).where(Device.state == "invalid")))
    return msg_states, deliveries, invalid


def _count_final(ids: list[str]) -> int:
    msg_states, _, _ = snapshot(ids)
    return sum(1 for s in msg_states.values() if s in states.MESSAGE_FINAL)


def wait_final(ids: list[str], timeout: float) -> None:
    """Poll until every message is final; a bar on a terminal, a line a second otherwise."""
    deadline = time.monotonic() + timeout
    done = 0
    if sys.stderr.isatty():
        with click.progressbar(length=len(ids), label="messages final", file=sys.stderr) as bar:
            while done < len(ids) and time.monotonic() < deadline:
                time.sleep(0.25)
                now_done = _count_final(ids)
                bar.update(now_done - done)
                done = now_done
        return
    last_line = 0.0
    while done < len(ids) and time.monotonic() < deadline:
        time.sleep(0.25)
        done = _count_final(ids)
        if time.monotonic() - last_line >= 1.0 or done == len(ids):
            click.echo(f"waiting: {done}/{len(ids)} messages final", err=True)
            last_line = time.monotonic()


def expectation_problems(
    policy: str, kind: str, deliveries: list[tuple[str, str]], state: str
) -> list[str]:
    push = [s for c, s in deliveries if c == states.PUSH]
    sms = [s for c, s in deliveries if c == states.SMS]
    problems = []
    if state != states.DELIVERED:
        problems.append(f"message {state}")
    want_push = {
        "online": {states.ACKED},
        "offline": {states.UNCONFIRMED},
        "uninstalled": {states.FAILED},
        "phone-only": set(),
    }[kind]
    if set(push) - want_push or (kind in ("online", "offline") and not push):
        problems.append(f"push {push}, expected {sorted(want_push) or 'none'}")
    want_sms = (
        [states.CANCELLED] if (policy, kind) == ("supplement", "online") else [states.DELIVERED]
    )
    if sms != want_sms:
        problems.append(f"sms {sms}, expected {want_sms}")
    return problems


def report(stack: Stack, sent: dict[str, tuple[str, str]], users: list[DemoUser]) -> int:
    msg_states, deliveries, invalid = snapshot(list(sent))
    rows: dict[str, Counter[str]] = {p: Counter() for p in POLICIES}
    problems: list[str] = []
    for mid, (policy, kind) in sent.items():
        ds = deliveries.get(mid, [])
        row = rows[policy]
        row["messages"] += 1
        row["pushed"] += sum(
            1 for c, s in ds if c == states.PUSH and s in (states.ACKED, states.UNCONFIRMED)
        )
        row["acked"] += sum(1 for c, s in ds if c == states.PUSH and s == states.ACKED)
        row["sms sent"] += sum(
            1
            for c, s in ds
            if c == states.SMS and s in (states.SUBMITTED, states.DELIVERED, states.UNDELIVERED)
        )
        row["sms delivered"] += sum(1 for c, s in ds if c == states.SMS and s == states.DELIVERED)
        row["failed"] += sum(1 for _, s in ds if s in (states.FAILED, states.UNDELIVERED))
        issues = expectation_problems(policy, kind, ds, msg_states.get(mid, "missing"))
        if issues:
            problems.append(f"{policy} {kind} {mid}: {'; '.join(issues)}")
        else:
            row["as expected"] += 1
    problems += _fleet_problems(stack, users, invalid, sent)
    _print_table(rows)
    for p in problems:
        click.echo(f"NOT AS EXPECTED: {p}", err=True)
    click.echo(
        "result: "
        + (
            "every message reached the state its device implies"
            if not problems
            else f"{len(problems)} problem(s)"
        )
    )
    return 0 if not problems else 1


def _fleet_problems(
    stack: Stack, users: list[DemoUser], invalid: set[str], sent: dict[str, Any]
) -> list[str]:
    problems = [
        f"{u.user_id}: device not invalidated"
        for u in users
        if u.kind == "uninstalled" and u.token not in invalid
    ]
    problems += [
        f"{u.user_id}: device wrongly invalidated"
        for u in users
        if u.kind != "uninstalled" and u.token in invalid
    ]
    carrier = Counter(item["out_id"] for item in stack.received("carrier"))
    problems += [
        f"SMS {out_id} reached the carrier {n} times" for out_id, n in carrier.items() if n != 1
    ]
    return problems


def _print_table(rows: dict[str, Counter[str]]) -> None:
    columns = ["messages", "pushed", "acked", "sms sent", "sms delivered", "failed", "as expected"]
    widths = [max(len(c), 6) for c in columns]
    click.echo("")
    click.echo(
        f"{'policy':<12}" + "".join(f"{c:>{w + 2}}" for c, w in zip(columns, widths, strict=True))
    )
    for policy, counts in rows.items():
        click.echo(
            f"{policy:<12}"
            + "".join(f"{counts[c]:>{w + 2}}" for c, w in zip(columns, widths, strict=True))
        )
    click.echo("")


def run_demo(
    users: int, deadline: int, timeout: float, keep: bool, home: Path | None = None
) -> int:
    workdir = home or Path(tempfile.mkdtemp(prefix="notifier-demo-"))
    stack = Stack(workdir)
    click.echo(f"starting mocks, API and workers in {workdir} …", err=True)
    try:
        with stack:
            settings = get_settings()
            click.echo(
                f"database {settings.db_url.split('@')[-1]}, broker {settings.broker}", err=True
            )
            seed_catalogue()
            fleet = make_fleet(users)
            bind_fleet(stack, fleet)
            sent = send_all(stack, fleet, deadline)
            click.echo(
                f"sent {len(sent)} messages to {len(fleet)} users; deadline {deadline}s", err=True
            )
            wait_final(list(sent), timeout)
            return report(stack, sent, fleet)
    finally:
        if not keep and home is None:
            shutil.rmtree(workdir, ignore_errors=True)
