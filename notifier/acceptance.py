"""Accepting a message: check it against the user and the catalogue, write the message with
its deliveries in the caller's transaction, publish what the first step queues after commit.

Refusals happen here, before anything is written (a user without a phone under a plan that
needs SMS, a template of the wrong kind), never later at worker time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy.orm import Session

from config.settings import Settings
from notifier import catalog
from notifier.domain import states
from notifier.domain.errors import InvalidInput
from notifier.domain.policy import PUSH, SMS, MessageClass, channels_of, first_step
from notifier.domain.requests import Limits, SendRequest
from notifier.pipeline import publish
from notifier.store import repo
from notifier.store.accepted import write_accepted
from notifier.store.db import transaction
from notifier.store.ids import new_id
from notifier.store.models import Delivery, Device, Message, User
from notifier.store.repo import EventRow


def limits(settings: Settings) -> Limits:
    return Limits(
        receipt_deadline_default=settings.receipt_deadline_default,
        receipt_deadline_min=settings.receipt_deadline_min,
        receipt_deadline_max=settings.receipt_deadline_max,
        ttl_default=settings.message_ttl_default,
        verification_ttl_default=settings.verification_ttl_default,
        verification_ttl_max=settings.verification_ttl_max,
        verification_concurrent=settings.verification_allow_concurrent,
    )


class Accepted(NamedTuple):
    message: Message
    deliveries: list[Delivery]


def accept(
    session: Session,
    req: SendRequest,
    settings: Settings,
    about_device: uuid.UUID | None = None,
) -> Accepted:
    """Write the message and its deliveries; raises InvalidInput before writing anything."""
    user, active = repo.user_with_active_devices(session, req.user_id)
    if user is None:
        raise InvalidInput("user_id", f"unknown user {req.user_id}: bind a device or phone first")
    channels = channels_of(req.plan)
    now = repo.utcnow()
    devices, withheld = _push_targets(active, req, settings, now) if PUSH in channels else ([], [])
    sms = _check_sms(session, req, user, settings) if SMS in channels else None
    available = ({PUSH} if devices else set()) | ({SMS} if sms else set())
    first = first_step(req.plan, available)
    if first is None:
        raise InvalidInput("user_id", f"user {req.user_id} has no active device for {req.policy}")
    message = _new_message(req, first, sms, now)
    message.about_device = about_device
    deliveries = _deliveries(message, req, first, devices, user, sms)
    events = [EventRow(message.id, "accepted", f"{req.policy} {req.message_class}")]
    events += [
        EventRow(
            message.id,
            "push_withheld",
            f"device {d} bound less than {settings.verification_sms_only_hours} h ago",
        )
        for d in withheld
    ]
    write_accepted(session, message, deliveries, events, now)
    return Accepted(message, deliveries)


def _push_targets(
    devices: list[Device], req: SendRequest, settings: Settings, now: datetime
) -> tuple[list[Device], list[uuid.UUID]]:
    """The active devices to push to; a one-time code skips devices bound too recently to be
    trusted."""
    if req.message_class is not MessageClass.VERIFICATION:
        return devices, []
    trusted_since = now - timedelta(hours=settings.verification_sms_only_hours)
    fresh = [d for d in devices if d.bound_at is not None and d.bound_at > trusted_since]
    return [d for d in devices if d not in fresh], [d.id for d in fresh]


def _check_sms(
    session: Session, req: SendRequest, user: User, settings: Settings
) -> catalog.Composed:
    """Template and signature approved, of the message's class, params complete."""
    if not user.phone:
        raise InvalidInput(
            "user_id", f"user {req.user_id} has no phone number; {req.policy} needs SMS"
        )
    if req.sms is None:
        raise InvalidInput("sms", f"is required: {req.policy} sends an SMS")
    row = repo.get_template(session, req.sms.template)
    if row is None:
        raise InvalidInput("sms.template", f"unknown template {req.sms.template}")
    kind = req.message_class.template_kind
    if row.kind != kind:
        raise InvalidInput(
            "sms.template",
            f"{row.code} is a {row.kind} template; a {req.message_class} message needs a "
            f"{kind} template",
        )
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
    req: SendRequest, first: int, sms: catalog.Composed | None, now: datetime
) -> Message:
    expires = now + timedelta(seconds=req.ttl)
    return Message(
        id=new_id(),
        user_id=req.user_id,
        idempotency_key=req.idempotency_key,
        policy=req.policy.value,
        message_class=req.message_class.value,
        confirm_trigger=req.trigger.value,
        chain=req.chain,
        step=first,
        state=states.ACCEPTED,
        push_title=req.push.title if req.push else None,
        push_body=req.push.body if req.push else None,
        push_data=dict(req.push.data) if req.push else {},
        push_options=req.push.options() if req.push else {},
        sms_template=sms.template.code if sms else None,
        sms_signature=sms.signature.name if sms else None,
        sms_params=dict(sms.params) if sms else {},
        receipt_deadline_s=req.receipt_deadline,
        receipt_due_at=states.step_due(now, req.plan[first].deadline, expires),
        expires_at=expires,
        created_at=now,
        updated_at=now,
    )


def _deliveries(
    message: Message,
    req: SendRequest,
    first: int,
    devices: Sequence[Device],
    user: User,
    sms: catalog.Composed | None,
) -> list[Delivery]:
    now = message.created_at
    rows: list[Delivery] = []
    for index, step in enumerate(req.plan):
        if index < first:
            continue  # skipped: nothing to deliver to on this step's channels
        state = states.QUEUED if index == first else states.STANDBY
        common = {"message_id": message.id, "step": index, "state": state, "attempts": 0}
        if PUSH in step.channels:
            rows += [
                Delivery(
                    id=new_id(),
                    channel=states.PUSH,
                    lane=req.message_class.lane(states.PUSH),
                    device_id=d.id,
                    platform=d.platform,
                    target=d.token,
                    created_at=now,
                    updated_at=now,
                    **common,
                )
                for d in devices
            ]
        if SMS in step.channels and sms is not None and user.phone:
            rows.append(
                Delivery(
                    id=new_id(),
                    channel=states.SMS,
                    lane=req.message_class.lane(states.SMS),
                    target=user.phone,
                    sms_text=sms.text,
                    sms_encoding=sms.segments.encoding,
                    sms_parts=sms.segments.count,
                    sms_cost=sms.cost,
                    created_at=now,
                    updated_at=now,
                    **common,
                )
            )
    return rows


def publish_new(message_ids: Sequence[uuid.UUID]) -> None:
    """Publish the first step of freshly committed messages. Nothing records that the publish
    happened: a queued delivery nobody picks up is re-published by the sweep, whether its
    publish failed, the process died before it, or the task was lost in the broker."""
    with transaction() as session:
        deliveries = repo.deliveries_of(session, message_ids)
        messages = repo.load_messages(session, message_ids)
    publish_accepted(messages, deliveries)


def publish_accepted(messages: Sequence[Message], deliveries: Sequence[Delivery]) -> None:
    """publish_new for rows its caller still holds from the committed transaction (as the
    producer does): the same, without reading them back."""
    bulk = {m.id for m in messages if MessageClass(m.message_class).bulk}
    publish.deliveries(
        publish.Job(d.id, d.channel, d.message_id in bulk)
        for d in deliveries
        if d.state == states.QUEUED
    )
    _time_sms_steps(messages, deliveries)


def _time_sms_steps(messages: Sequence[Message], deliveries: Sequence[Delivery]) -> None:
    """A push step starts its own timer once sent; an SMS step followed by another step
    needs one from the start (the sweep is the safety net for both)."""
    waiting = {d.message_id for d in deliveries if d.state == states.STANDBY}
    pushing = {d.message_id for d in deliveries if d.state == states.QUEUED and d.channel == PUSH}
    for m in messages:
        if m.id in waiting and m.id not in pushing and m.receipt_due_at is not None:
            publish.receipts_due(m.receipt_due_at)
