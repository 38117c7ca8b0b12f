"""Binding devices to users, and the security notices that make a takeover visible.

A new device linked to a user who already has one gets the user an SMS notice ("a new device
was linked … if this was not you …") and is held — it receives nothing — until that notice has
gone out. A token moved from one user to another tells the previous owner too.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from config.settings import get_settings
from notifier import acceptance
from notifier.domain.errors import InvalidInput, NotFound
from notifier.domain.masking import mask_phone
from notifier.domain.policy import MessageClass, Policy
from notifier.domain.requests import SendRequest, SmsContent, parse_bind, user_id
from notifier.domain.segments import tags
from notifier.domain.templates import placeholders
from notifier.store import repo
from notifier.store.db import transaction
from notifier.store.models import Device, User

log = logging.getLogger(__name__)
PLATFORM_NAMES = {"apns": "iOS", "fcm": "Android"}


def bind_device_payload(payload: Mapping[str, Any], only_user: str | None = None) -> uuid.UUID:
    """Bind a push token (and optionally the user's phone) to a user; returns the device id.

    `only_user`: the user a device API key belongs to; binding anyone else is refused.
    """
    req = parse_bind(payload)
    if only_user is not None and req.user_id != only_user:
        raise InvalidInput("user_id", "this device key binds devices of its own user only")
    settings = get_settings()
    with transaction() as session:
        user = repo.upsert_user(session, req.user_id, req.phone)
        had_devices = bool(repo.active_devices(session, req.user_id))
        attributes = {"app_version": req.app_version, "locale": req.locale}
        binding = repo.bind_device(session, req.user_id, req.platform, req.token, attributes)
        notices: list[uuid.UUID] = []
        if binding.is_new and had_devices:
            notice = _notice(session, user, binding.device, settings.security_notice_template)
            if notice is not None:
                binding.device.state = "held"  # nothing reaches it before the notice is out
                notices.append(notice)
        if binding.previous_user is not None:
            previous = session.get(User, binding.previous_user)
            if previous is not None:
                moved = _notice(session, previous, None, settings.security_moved_template)
                notices += [moved] if moved else []
        device_id = binding.device.id
    acceptance.publish_new(notices)
    return device_id


def _notice(
    session: Session, user: User, device: Device | None, template_code: str
) -> uuid.UUID | None:
    """Accept a security notice SMS; None (and a loud log line) when it cannot be sent."""
    settings = get_settings()
    template = repo.get_template(session, template_code)
    if not user.phone or template is None:
        reason = "the user has no phone" if not user.phone else f"no template {template_code}"
        log.error("security notice for user %s not sent: %s", user.id, reason)
        return None
    facts = _facts(device)
    params = {k: facts[k] for k in placeholders(template.content) if k in facts}
    req = SendRequest(
        user.id,
        Policy.SMS_ONLY,
        None,
        SmsContent(template_code, params, None),
        None,
        settings.receipt_deadline_default,
        settings.message_ttl_default,
        MessageClass.TRANSACTIONAL,
    )
    try:
        with session.begin_nested():
            about = device.id if device else None
            message = acceptance.accept(session, req, settings, about).message
    except InvalidInput as exc:
        log.error("security notice for user %s not sent: %s", user.id, exc)
        return None
    log.info("security notice %s to %s for user %s", message.id, mask_phone(user.phone), user.id)
    return message.id


def _facts(device: Device | None) -> dict[str, str]:
    now = repo.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    platform = PLATFORM_NAMES.get(device.platform, device.platform) if device else ""
    return {"platform": platform, "time": now}


def set_tags(user: object, raw_tags: object) -> tuple[str, ...]:
    """Replace the tags broadcasts select a user by; the user must exist."""
    uid, chosen = user_id(user), tags(raw_tags)
    with transaction() as session:
        if session.get(User, uid) is None:
            raise NotFound("user", uid)
        repo.set_tags(session, uid, chosen)
    return chosen
