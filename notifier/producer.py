"""The Python API application code calls: bind devices and phones, send messages, report acks.

Everything is validated before anything is written; a message is committed with its deliveries
in one transaction and published after the commit (the sweep covers a failed publish).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from config.settings import Settings, get_settings
from notifier import catalog
from notifier.domain import states
from notifier.domain.errors import Conflict, InvalidInput
from notifier.domain.policy import Policy, sms_starts_immediately
from notifier.domain.requests import (
    Limits,
    SendRequest,
    parse_ack,
    parse_bind,
    parse_send,
    phone_e164,
    user_id,
)
from notifier.pipeline import ingest, publish
from notifier.store import repo
from notifier.store.db import transaction
from notifier.store.models import Delivery, Device, Message, User
from notifier.store.repo import EventRow


def limits(settings: Settings) -> Limits:
    return Limits(
        settings.receipt_deadline_default,
        settings.receipt_deadline_min,
        settings.receipt_deadline_max,
        settings.message_ttl_default,
    )


def bind_device(user_id: str, platform: str, token: str, phone: str | None = None) -> uuid.UUID:
    """Bind a push token (and optionally the user's phone) to a user; returns the device id."""
    return bind_device_payload(
        {"user_id": user_id, "platform": platform, "token": token, "phone": phone}
    )


def bind_device_payload(payload: Mapping[str, Any]) -> uuid.UUID:
    """`bind_device` from an untrusted mapping (the HTTP body); refusals name the field."""
    req = parse_bind(payload)
    with transaction() as session:
        repo.upsert_user(session, req.user_id, req.phone)
        device, _is_new = repo.bind_device(session, req.user_id, req.platform, req.token)
        return device.id


def bind_phone(user: object, phone: object) -> None:
    """Record the phone number SMS goes to, for users with or without an app."""
    uid, number = user_id(user), phone_e164(phone)
    with transaction() as session:
        repo.upsert_user(session, uid, number)


def send(
    user_id: str,
    *,
    policy: str = Policy.SUPPLEMENT.value,
    push: Mapping[str, Any] | None = None,
    sms: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
    receipt_deadline: int | None = None,
    ttl: int | None = None,
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
    }
    return send_payload(payload)


def send_payload(payload: Mapping[str, Any]) -> uuid.UUID:
    """`send` from an untrusted mapping (the HTTP body); refusals name the field."""
    return send_request(parse_send(payload, limits(get_settings())))


def send_request(req: SendRequest) -> uuid.UUID:
    try:
        message_id, fresh = _accept(req)
    except IntegrityError:
        # Two requests raced with one idempotency key: the other one won; answer with its id.
        if req.idempotency_key is None:
            raise
        message_id, fresh = _accept(req)
    if fresh:
        _publish_new(message_id)
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


def _accept(req: SendRequest) -> tuple[uuid.UUID, bool]:
    settings = get_settings()
    with transaction() as session:
        existing = _existing(session, req)
        if existing is not None:
            return existing, False
        user = session.get(User, req.user_id)
        if user is None:
            raise InvalidInput(
                "user_id", f"unknown user {req.user_id}: bind a device or phone first"
            )
        devices = repo.active_devices(session, req.user_id) if req.policy.uses_push else []
        sms = _check_sms(session, req, user, settings) if req.sms else None
        if req.policy is Policy.PUSH_ONLY and not devices:
            raise InvalidInput("user_id", f"user {req.user_id} has no active device for push_only")
        message = _new_message(req, devices, sms)
        session.add(message)
        session.flush()
        session.add_all(_deliveries(message, req.policy, devices, user, sms))
        repo.add_events(session, [EventRow(message.id, "accepted", req.policy.value)])
        return message.id, True


def _check_sms(
    session: Session, req: SendRequest, user: User, settings: Settings
) -> catalog.Composed:
    """Template and signature approved, params complete: refused here, never at worker time."""
    assert req.sms is not None
    if not user.phone:
        raise InvalidInput(
            "user_id", f"user {req.user_id} has no phone number; {req.policy} needs SMS"
        )
    row = repo.get_template(session, req.sms.template)
    if row is None:
        raise InvalidInput("sms.template", f"unknown template {req.sms.template}")
    sign = req.sms.signature or settings.sms_default_signature
    if not sign:
        raise InvalidInput("sms.signature", "is required (no NOTIFIER_SMS_DEFAULT_SIGNATURE set)")
    sig_row = repo.get_signature(session, sign)
    if sig_row is None:
        raise InvalidInput("sms.signature", f"unknown signature {sign}")
    return catalog.compose(
        catalog.to_template(row), catalog.to_signature(sig_row), req.sms.params, user.phone
    )


def _new_message(
    req: SendRequest, devices: Sequence[Device], sms: catalog.Composed | None
) -> Message:
    now = repo.utcnow()
    due = now + timedelta(seconds=req.receipt_deadline) if devices else None
    return Message(
        id=uuid.uuid4(),
        user_id=req.user_id,
        idempotency_key=req.idempotency_key,
        policy=req.policy.value,
        state=states.ACCEPTED,
        push_title=req.push.title if req.push else None,
        push_body=req.push.body if req.push else None,
        push_data=dict(req.push.data) if req.push else {},
        push_options=req.push.options() if req.push else {},
        sms_template=sms.template.code if sms else None,
        sms_signature=sms.signature.name if sms else None,
        sms_params=dict(sms.params) if sms else {},
        receipt_deadline_s=req.receipt_deadline,
        receipt_due_at=due,
        expires_at=now + timedelta(seconds=req.ttl),
        created_at=now,
        updated_at=now,
    )


def _deliveries(
    message: Message,
    policy: Policy,
    devices: Sequence[Device],
    user: User,
    sms: catalog.Composed | None,
) -> list[Delivery]:
    now = message.created_at
    rows = [
        Delivery(
            id=uuid.uuid4(),
            message_id=message.id,
            channel=states.PUSH,
            device_id=d.id,
            platform=d.platform,
            target=d.token,
            state=states.QUEUED,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        for d in devices
    ]
    if sms is not None and user.phone:
        first = states.QUEUED if sms_starts_immediately(policy, len(devices)) else states.STANDBY
        rows.append(
            Delivery(
                id=uuid.uuid4(),
                message_id=message.id,
                channel=states.SMS,
                target=user.phone,
                state=first,
                attempts=0,
                sms_text=sms.text,
                sms_encoding=sms.segments.encoding,
                sms_parts=sms.segments.count,
                sms_cost=sms.cost,
                created_at=now,
                updated_at=now,
            )
        )
    return rows


def _publish_new(message_id: uuid.UUID) -> None:
    with transaction() as session:
        deliveries = repo.deliveries_of(session, [message_id])
    queued = [d for d in deliveries if d.state == states.QUEUED]
    ok = publish.push([d.id for d in queued if d.channel == states.PUSH])
    ok = publish.sms([d.id for d in queued if d.channel == states.SMS]) and ok
    if ok:
        with transaction() as session:
            repo.mark_published(session, [message_id])


def ack(delivery_id: str, kind: str = "received") -> bool:
    """Record one device receipt; True if it changed anything."""
    return ack_many([{"delivery_id": delivery_id, "kind": kind}]).accepted == 1


def ack_many(acks: Sequence[Mapping[str, Any]]) -> ingest.IngestResult:
    return ingest.record_acks([parse_ack(a) for a in acks])


def record_delivery_reports(reports: Sequence[Mapping[str, Any]]) -> ingest.IngestResult:
    return ingest.record_dlrs(reports)
