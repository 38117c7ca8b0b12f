"""The Python API application code calls: bind devices and phones, send messages, report acks.

Everything is validated before anything is written; a message is committed with its deliveries
in one transaction and published after the commit (the sweep covers a failed publish).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from config.settings import get_settings
from notifier import acceptance, binding
from notifier.domain.errors import Conflict, Unavailable
from notifier.domain.requests import (
    SendRequest,
    parse_ack,
    parse_send,
    phone_e164,
    user_id,
)
from notifier.pipeline import ingest
from notifier.store import repo
from notifier.store.db import transaction


def bind_device(user_id: str, platform: str, token: str, phone: str | None = None) -> uuid.UUID:
    """Bind a push token (and optionally the user's phone) to a user; returns the device id."""
    return binding.bind_device_payload(
        {"user_id": user_id, "platform": platform, "token": token, "phone": phone}
    )


def bind_phone(user: object, phone: object) -> None:
    """Record the phone number SMS goes to, for users with or without an app."""
    uid, number = user_id(user), phone_e164(phone)
    with transaction() as session:
        repo.upsert_user(session, uid, number)


def send(
    user_id: str,
    *,
    policy: str | None = None,
    push: Mapping[str, Any] | None = None,
    sms: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
    receipt_deadline: int | None = None,
    ttl: int | None = None,
    message_class: str | None = None,
    trigger: str | None = None,
    chain: Sequence[Any] | None = None,
) -> uuid.UUID:
    """Accept a message for delivery; returns its id (the same id again for a repeated key)."""
    payload = {
        "user_id": user_id,
        "policy": policy,
        "push": push,
        "sms": sms,
        "idempotency_key": idempotency_key,
        "receipt_deadline": receipt_deadline,
        "ttl": ttl,
        "class": message_class,
        "trigger": trigger,
        "chain": list(chain) if chain is not None else None,
    }
    return send_payload(payload)


def send_payload(payload: Mapping[str, Any]) -> uuid.UUID:
    """`send` from an untrusted mapping (the HTTP body); refusals name the field."""
    return send_request(parse_send(payload, acceptance.limits(get_settings())))


def send_request(req: SendRequest) -> uuid.UUID:
    try:
        try:
            message_id, fresh = _accept(req)
        except IntegrityError:
            # Two requests raced with one idempotency key: the other one won; answer with its id.
            if req.idempotency_key is None:
                raise
            message_id, fresh = _accept(req)
    except (OperationalError, InterfaceError) as exc:
        raise Unavailable(
            f"database unavailable, retry (with the same idempotency key): {exc}"
        ) from exc
    if fresh is not None:
        acceptance.publish_accepted([fresh.message], fresh.deliveries)
    return message_id


def _existing(session: Session, req: SendRequest) -> uuid.UUID | None:
    if req.idempotency_key is None:
        return None
    found = repo.find_message_by_key(session, req.idempotency_key)
    if found is None:
        return None
    if found.user_id != req.user_id:
        raise Conflict(f"idempotency_key {req.idempotency_key!r} was used for another user")
    return found.id


def _accept(req: SendRequest) -> tuple[uuid.UUID, acceptance.Accepted | None]:
    """The message id, and the rows written when the message is new (None for a repeat)."""
    with transaction() as session:
        existing = _existing(session, req)
        if existing is not None:
            return existing, None
        accepted = acceptance.accept(session, req, get_settings())
        return accepted.message.id, accepted


def ack(delivery_id: str, kind: str = "received") -> bool:
    """Record one device receipt; True if it changed anything."""
    parsed = parse_ack({"delivery_id": delivery_id, "kind": kind})
    return ingest.record_acks([parsed]).accepted == 1


def ack_many(
    acks: Sequence[Mapping[str, Any]], only_user: str | None = None
) -> ingest.IngestResult:
    """Record device receipts; with `only_user`, receipts for other users' pushes are ignored."""
    return ingest.record_receipts(acks, only_user)


def record_delivery_reports(reports: Sequence[Mapping[str, Any]]) -> ingest.IngestResult:
    return ingest.record_dlrs(reports)


def set_tags(user_id: str, tags: Sequence[str]) -> tuple[str, ...]:
    """Replace the tags a user is selected by in broadcast segments."""
    return binding.set_tags(user_id, list(tags))


def send_broadcast(
    segment: Mapping[str, Any],
    push: Mapping[str, Any],
    *,
    name: str | None = None,
    message_class: str = "promotional",
    ttl: int | None = None,
    receipt_deadline: int | None = None,
) -> uuid.UUID:
    """One push to every user the segment selects (one message each, findable in the inbox);
    returns the broadcast id. Fan-out runs in the background: poll `broadcast_progress`."""
    from notifier import broadcasts

    payload: dict[str, Any] = {
        "segment": dict(segment),
        "push": dict(push),
        "name": name,
        "class": message_class,
    }
    if ttl is not None:
        payload["ttl"] = ttl
    if receipt_deadline is not None:
        payload["receipt_deadline"] = receipt_deadline
    return uuid.UUID(broadcasts.send_broadcast_payload(payload)["broadcast_id"])


def broadcast_progress(broadcast_id: uuid.UUID) -> dict[str, Any]:
    from notifier import broadcasts

    return broadcasts.progress(broadcast_id)
