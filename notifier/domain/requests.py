"""Parsing producer/API input into typed requests; every refusal names the field and the rule."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from notifier.domain.errors import InvalidInput
from notifier.domain.policy import Policy

PLATFORMS = ("apns", "fcm")
USER_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
# APNs device tokens are hex strings (32 bytes today; Apple says not to assume the length).
APNS_TOKEN = re.compile(r"^[0-9a-fA-F]{64,200}$")
# FCM registration tokens: URL-safe base64 with ':' separators, ~150+ characters.
FCM_TOKEN = re.compile(r"^[A-Za-z0-9_:\-]{32,4096}$")
MAX_TITLE = 256
MAX_BODY = 4000
MAX_IDEMPOTENCY_KEY = 128
ACK_KINDS = ("received", "opened")


@dataclass(frozen=True)
class Limits:
    receipt_deadline_default: int = 30
    receipt_deadline_min: int = 15
    receipt_deadline_max: int = 3 * 24 * 3600
    ttl_default: int = 24 * 3600


@dataclass(frozen=True)
class PushContent:
    title: str
    body: str
    data: dict[str, str] = field(default_factory=dict)
    collapse_id: str | None = None
    background: bool = False
    priority: str = "high"

    def options(self) -> dict[str, object]:
        return {
            "collapse_id": self.collapse_id,
            "background": self.background,
            "priority": self.priority,
        }


@dataclass(frozen=True)
class SmsContent:
    template: str
    params: dict[str, Any]
    signature: str | None


@dataclass(frozen=True)
class SendRequest:
    user_id: str
    policy: Policy
    push: PushContent | None
    sms: SmsContent | None
    idempotency_key: str | None
    receipt_deadline: int
    ttl: int


@dataclass(frozen=True)
class BindRequest:
    user_id: str
    platform: str
    token: str
    phone: str | None


def _str(
    payload: Mapping[str, Any], name: str, *, max_len: int, required: bool = True, prefix: str = ""
) -> str:
    value, field = payload.get(name), f"{prefix}{name}"
    if value is None or value == "":
        if required:
            raise InvalidInput(field, "is required")
        return ""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    if len(value) > max_len:
        raise InvalidInput(field, f"at most {max_len} characters, got {len(value)}")
    return value


def _int(payload: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = payload.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(name, "must be an integer number of seconds")
    if not low <= value <= high:
        raise InvalidInput(name, f"must be between {low} and {high} seconds, got {value}")
    return value


def user_id(value: object, name: str = "user_id") -> str:
    if not isinstance(value, str) or not USER_ID.match(value):
        raise InvalidInput(name, "1-128 characters of letters, digits and _ . : @ -")
    return value


def phone_e164(value: object, name: str = "phone") -> str:
    """Parse a phone number written in international form (+country…) into E.164."""
    if not isinstance(value, str):
        raise InvalidInput(name, "must be a string in international format, e.g. +8613800138000")
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(name, f"not a phone number in international format ({exc})") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput(name, f"{value} is not a valid number for its country")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def _push_options(raw: Mapping[str, Any]) -> tuple[str | None, bool, str]:
    collapse_id = raw.get("collapse_id")
    # apns-collapse-id may not exceed 64 bytes ("Sending notification requests to APNs").
    if collapse_id is not None and (
        not isinstance(collapse_id, str) or not 0 < len(collapse_id.encode()) <= 64
    ):
        raise InvalidInput("push.collapse_id", "a string of 1-64 bytes")
    background = raw.get("background", False)
    if not isinstance(background, bool):
        raise InvalidInput("push.background", "must be true or false")
    priority = raw.get("priority", "high")
    if priority not in ("high", "normal"):
        raise InvalidInput("push.priority", "must be high or normal")
    return collapse_id, background, str(priority)


def _push(raw: object) -> PushContent:
    if not isinstance(raw, Mapping):
        raise InvalidInput("push", "must be an object with title and body")
    title = _str(raw, "title", max_len=MAX_TITLE, required=False, prefix="push.")
    body = _str(raw, "body", max_len=MAX_BODY, required=False, prefix="push.")
    collapse_id, background, priority = _push_options(raw)
    if not title and not body and not background:
        raise InvalidInput("push.body", "a push needs a title or a body (or background: true)")
    data = raw.get("data")
    data = {} if data is None else data
    if not isinstance(data, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        # FCM accepts only string values in `data`; we hold APNs to the same rule.
        raise InvalidInput("push.data", "must map strings to strings")
    if "nid" in data:
        raise InvalidInput("push.data.nid", "is reserved for the delivery id")
    return PushContent(title, body, dict(data), collapse_id, background, priority)


def _sms(raw: object) -> SmsContent:
    if not isinstance(raw, Mapping):
        raise InvalidInput("sms", "must be an object with template and params")
    template = raw.get("template")
    if not isinstance(template, str) or not template:
        raise InvalidInput("sms.template", "is required")
    params = raw.get("params")
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        raise InvalidInput("sms.params", "must be an object of variable name to value")
    signature = raw.get("signature")
    if signature is not None and not isinstance(signature, str):
        raise InvalidInput("sms.signature", "must be a string")
    return SmsContent(template, dict(params), signature)


def parse_send(payload: Mapping[str, Any], limits: Limits) -> SendRequest:
    uid = user_id(payload.get("user_id"))
    raw_policy = payload.get("policy", Policy.SUPPLEMENT.value)
    try:
        policy = Policy(raw_policy)
    except ValueError:
        allowed = ", ".join(p.value for p in Policy)
        raise InvalidInput("policy", f"must be one of {allowed}") from None
    push = _push(payload.get("push")) if policy.uses_push else None
    sms = _sms(payload.get("sms")) if policy.uses_sms else None
    key = _str(payload, "idempotency_key", max_len=MAX_IDEMPOTENCY_KEY, required=False) or None
    deadline = _int(
        payload,
        "receipt_deadline",
        limits.receipt_deadline_default,
        limits.receipt_deadline_min,
        limits.receipt_deadline_max,
    )
    ttl = _int(payload, "ttl", limits.ttl_default, 1, 28 * 24 * 3600)
    return SendRequest(uid, policy, push, sms, key, deadline, ttl)


def parse_bind(payload: Mapping[str, Any]) -> BindRequest:
    uid = user_id(payload.get("user_id"))
    platform = payload.get("platform")
    if platform not in PLATFORMS:
        raise InvalidInput("platform", f"must be one of {', '.join(PLATFORMS)}")
    token = payload.get("token")
    pattern = APNS_TOKEN if platform == "apns" else FCM_TOKEN
    if not isinstance(token, str) or not pattern.match(token):
        rule = (
            "64-200 hexadecimal characters"
            if platform == "apns"
            else "32-4096 characters of letters, digits and _ : -"
        )
        raise InvalidInput("token", f"an {platform} token is {rule}")
    phone = payload.get("phone")
    return BindRequest(uid, str(platform), token, phone_e164(phone) if phone else None)


def parse_ack(payload: Mapping[str, Any]) -> tuple[str, str]:
    delivery_id = payload.get("delivery_id")
    if not isinstance(delivery_id, str) or not delivery_id:
        raise InvalidInput("delivery_id", "is required (the `nid` field of the push payload)")
    kind = payload.get("kind", "received")
    if kind not in ACK_KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(ACK_KINDS)}")
    return delivery_id, str(kind)
