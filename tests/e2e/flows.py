"""Helpers for end-to-end flows: bind a simulated device, send, read the result."""

from __future__ import annotations

import secrets
from typing import Any

from notifier.demo.run import SIGNATURE, TEMPLATE
from notifier.demo.stack import Stack

DEADLINE = 3


def token(platform: str) -> str:
    if platform == "apns":
        return secrets.token_hex(32)
    return f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(100)}"


def bind(stack: Stack, platform: str, behaviour: str) -> tuple[str, str, str]:
    user, tok = f"u-{secrets.token_hex(4)}", token(platform)
    phone = f"+86139{secrets.randbelow(10**8):08d}"
    stack.set_behaviours(platform, {tok: behaviour})
    body = {"user_id": user, "platform": platform, "token": tok, "phone": phone}
    assert stack.api("POST", "/v1/devices", "device", json=body).status_code == 201
    return user, tok, phone


def payload(user: str, policy: str = "supplement", **extra: Any) -> dict[str, Any]:
    return {
        "user_id": user,
        "policy": policy,
        "push": {"title": "Statement", "body": "ready"},
        "sms": {
            "template": TEMPLATE,
            "params": {"account": "1234", "amount": "9.99"},
            "signature": SIGNATURE,
        },
        "receipt_deadline": DEADLINE,
        **extra,
    }


def send(stack: Stack, user: str, policy: str = "supplement", **extra: Any) -> Any:
    return stack.api("POST", "/v1/messages", json=payload(user, policy, **extra))


def by_channel(view: dict[str, Any], channel: str) -> list[dict[str, Any]]:
    return [d for d in view["deliveries"] if d["channel"] == channel]


def kinds(view: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in view["timeline"]]
