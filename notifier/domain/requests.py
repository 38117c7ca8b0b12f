"""Parsing producer/API input into typed requests; every refusal names the field and the rule."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import phonenumbers

from notifier.domain.errors import InvalidInput
from notifier.domain.policy import (
    PUSH,
    SMS,
    MessageClass,
    Plan,
    Policy,
    Step,
    Trigger,
    channels_of,
    plan_of,
)

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
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Limits:
    receipt_deadline_default: int = 30
    receipt_deadline_min: int = 15
    receipt_deadline_max: int = 3 * 24 * 3600
    ttl_default: int = 24 * 3600
    ttl_max: int = 28 * 24 * 3600
    verification_ttl_default: int = 300
    verification_ttl_max: int = 1800
    verification_concurrent: bool = False


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
    message_class: MessageClass = MessageClass.TRANSACTIONAL
    trigger: Trigger = Trigger.NOT_RECEIVED
    plan: Plan = ()

    def __post_init__(self) -> None:
        if not self.plan:
            object.__setattr__(self, "plan", plan_of(self.policy, self.receipt_deadline))

    @property
    def chain(self) -> list[dict[str, object]] | None:
        return [s.to_json() for s in self.plan] if self.policy is Policy.CHAIN else None


@dataclass(frozen=True)
class BindRequest:
    user_id: str
    platform: str
    token: str
    phone: str | None
    app_version: str | None = None
    locale: str | None = None


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
    _printable(value, field)
    return value


def _printable(value: str, field: str) -> None:
    # NUL and other control characters cannot be stored (PostgreSQL refuses NUL in text) and
    # have no business in a notification; tabs and line breaks are fine.
    if CONTROL.search(value):
        raise InvalidInput(
            field, "no control characters (NUL and the like); tabs and newlines are fine"
        )


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


def parse_push(raw: object) -> PushContent:
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
    for key, item in data.items():
        _printable(key, "push.data")
        _printable(item, f"push.data.{key}")
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


E = TypeVar("E", bound=StrEnum)


def _choice(payload: Mapping[str, Any], name: str, enum: type[E], default: E) -> E:
    raw = payload.get(name)
    if raw is None:
        return default
    try:
        return enum(raw)
    except ValueError:
        raise InvalidInput(name, f"must be one of {', '.join(e.value for e in enum)}") from None


def _deadline(raw: object, name: str, default: int, limits: Limits) -> int:
    low, high = limits.receipt_deadline_min, limits.receipt_deadline_max
    return _int({name: raw}, name, default, low, high)


def _chain(raw: object, default_deadline: int, limits: Limits) -> list[Step]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= len((PUSH, SMS)):
        raise InvalidInput("chain", 'a list of 1-2 steps, e.g. ["push", "sms"]')
    steps: list[Step] = []
    for i, written in enumerate(raw):
        where = f"chain[{i}]"
        item = {"channel": written} if isinstance(written, str) else written
        if not isinstance(item, Mapping) or item.get("channel") not in (PUSH, SMS):
            raise InvalidInput(where, 'a step is "push", "sms" or {"channel": …, "deadline": s}')
        if any(item["channel"] in s.channels for s in steps):
            raise InvalidInput(where, f"channel {item['channel']} appears twice in the chain")
        value = _deadline(item.get("deadline"), f"{where}.deadline", default_deadline, limits)
        steps.append(Step((str(item["channel"]),), value))
    return steps


def _check_class(cls: MessageClass, policy: Policy, limits: Limits) -> None:
    if cls is not MessageClass.VERIFICATION:
        return
    allowed = [Policy.SMS_ONLY] + ([Policy.CONCURRENT] if limits.verification_concurrent else [])
    if policy not in allowed:
        # A one-time code on push alone lands on whichever device was bound last.
        rule = f"a verification message is sent with {' or '.join(allowed)}, never plain push"
        raise InvalidInput("policy", rule)


def parse_send(payload: Mapping[str, Any], limits: Limits) -> SendRequest:
    uid = user_id(payload.get("user_id"))
    cls = _choice(payload, "class", MessageClass, MessageClass.TRANSACTIONAL)
    verification = cls is MessageClass.VERIFICATION
    default_policy = Policy.SMS_ONLY if verification else Policy.SUPPLEMENT
    policy = _choice(payload, "policy", Policy, default_policy)
    _check_class(cls, policy, limits)
    trigger = _choice(payload, "trigger", Trigger, Trigger.NOT_RECEIVED)
    deadline = _deadline(
        payload.get("receipt_deadline"), "receipt_deadline", limits.receipt_deadline_default, limits
    )
    if payload.get("chain") is not None and policy is not Policy.CHAIN:
        raise InvalidInput("chain", "is only read with policy chain")
    chain = _chain(payload.get("chain"), deadline, limits) if policy is Policy.CHAIN else None
    plan = plan_of(policy, deadline, chain)
    channels = channels_of(plan)
    push = parse_push(payload.get("push")) if PUSH in channels else None
    sms = _sms(payload.get("sms")) if SMS in channels else None
    key = _str(payload, "idempotency_key", max_len=MAX_IDEMPOTENCY_KEY, required=False) or None
    ttl_default, ttl_max = (
        (limits.verification_ttl_default, limits.verification_ttl_max)
        if verification
        else (limits.ttl_default, limits.ttl_max)
    )
    ttl = _int(payload, "ttl", ttl_default, 1, ttl_max)
    return SendRequest(uid, policy, push, sms, key, deadline, ttl, cls, trigger, plan)


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
    app_version = _str(payload, "app_version", max_len=32, required=False) or None
    locale = _str(payload, "locale", max_len=16, required=False) or None
    number = phone_e164(phone) if phone else None
    return BindRequest(uid, str(platform), token, number, app_version, locale)


# An SDK reports what piled up while offline in one call; a bound keeps one request's
# transaction short and its payload sane.
MAX_ACKS_PER_CALL = 1000


def parse_ack(payload: Mapping[str, Any]) -> tuple[str, str]:
    delivery_id = payload.get("delivery_id")
    if not isinstance(delivery_id, str) or not delivery_id:
        raise InvalidInput("delivery_id", "is required (the `nid` field of the push payload)")
    kind = payload.get("kind", "received")
    if kind not in ACK_KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(ACK_KINDS)}")
    return delivery_id, str(kind)


def parse_acks(items: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """A batch of receipts, at most MAX_ACKS_PER_CALL; a bad item is named by its index."""
    if len(items) > MAX_ACKS_PER_CALL:
        raise InvalidInput("acks", f"at most {MAX_ACKS_PER_CALL} per request, got {len(items)}")
    parsed = []
    for i, item in enumerate(items):
        try:
            parsed.append(parse_ack(item))
        except InvalidInput as exc:
            raise InvalidInput(f"acks[{i}].{exc.field}", exc.rule) from None
    return parsed
