"""Device binding on each database: held new devices, notices, fresh bindings and one-time codes."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from config.settings import get_settings
from notifier import producer
from notifier.pipeline.advance import advance_messages
from notifier.store import repo
from notifier.store.db import transaction
from notifier.store.models import Delivery, Device, Event, Message
from tests.helpers import approved_catalogue

OTP = {"template": "OTP", "params": {"code": "4821"}, "signature": "Bank"}
PHONE = "+8613800138000"


@pytest.fixture
def catalogue(migrated, env):
    env.setenv("NOTIFIER_SMS_DEFAULT_SIGNATURE", "Bank")
    env.setenv("NOTIFIER_VERIFICATION_ALLOW_CONCURRENT", "true")
    get_settings.cache_clear()
    approved_catalogue(
        "Bank",
        {
            "OTP": ("verification", "Your code is ${code}"),
            "security.device_linked": ("notification", "New ${platform} device at ${time}."),
            "security.device_moved": ("notification", "A device left your account at ${time}."),
        },
    )


def devices(user: str) -> dict[str, str]:
    with transaction() as s:
        return {d.token: d.state for d in s.scalars(select(Device).where(Device.user_id == user))}


def messages_of(user: str) -> list[Message]:
    with transaction() as s:
        return list(s.scalars(select(Message).where(Message.user_id == user)))


def test_first_device_is_active_and_a_second_is_held_until_its_notice_is_out(catalogue):
    producer.bind_device("ann", "apns", "aa" * 32, PHONE)
    assert devices("ann") == {"aa" * 32: "active"} and messages_of("ann") == []
    producer.bind_device("ann", "fcm", "b" * 64)
    assert devices("ann")["b" * 64] == "held"
    [notice] = messages_of("ann")
    assert (notice.policy, notice.sms_template) == ("sms_only", "security.device_linked")
    assert notice.sms_params["platform"] == "Android"
    # the SMS went out: the device is released on the next advance
    with transaction() as s:
        s.execute(
            update(Delivery).where(Delivery.message_id == notice.id).values(state="submitted")
        )
    advance_messages([notice.id])
    assert devices("ann")["b" * 64] == "active"


def test_re_registering_the_same_token_is_not_a_new_device(catalogue):
    producer.bind_device("ann", "apns", "aa" * 32, PHONE)
    producer.bind_device("ann", "fcm", "b" * 64)
    producer.bind_device("ann", "fcm", "b" * 64)
    assert len(messages_of("ann")) == 1


def test_moving_a_token_tells_the_previous_owner(catalogue):
    producer.bind_device("ann", "apns", "aa" * 32, PHONE)
    producer.bind_device("bob", "apns", "cc" * 32, "+8613800138001")
    producer.bind_device("bob", "apns", "aa" * 32)
    assert devices("ann") == {}
    [moved] = messages_of("ann")
    [linked] = messages_of("bob")
    assert (moved.sms_template, linked.sms_template) == (
        "security.device_moved",
        "security.device_linked",
    )


def test_no_notice_template_binds_the_device_active_and_says_so(migrated, caplog):
    producer.bind_device("cy", "apns", "aa" * 32, PHONE)
    producer.bind_device("cy", "apns", "dd" * 32)
    assert devices("cy") == {"aa" * 32: "active", "dd" * 32: "active"}
    assert "security notice for user cy not sent" in caplog.text


def test_one_time_codes_skip_devices_bound_recently(catalogue):
    producer.bind_device("dee", "apns", "aa" * 32, PHONE)
    fresh = producer.send(
        "dee", message_class="verification", policy="concurrent", push={"body": "code"}, sms=OTP
    )
    with transaction() as s:
        channels = [d.channel for d in repo.deliveries_of(s, [fresh])]
        events = [e.kind for e in s.scalars(select(Event).where(Event.message_id == fresh))]
    assert channels == ["sms"] and "push_withheld" in events
    with transaction() as s:
        old = repo.utcnow() - timedelta(hours=25)
        s.execute(update(Device).where(Device.user_id == "dee").values(bound_at=old))
    trusted = producer.send(
        "dee", message_class="verification", policy="concurrent", push={"body": "code"}, sms=OTP
    )
    with transaction() as s:
        assert sorted(d.channel for d in repo.deliveries_of(s, [trusted])) == ["push", "sms"]
