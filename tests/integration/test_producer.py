"""The producer on each database: validation before writing, publish after commit, idempotency."""

from pathlib import Path

import pytest
from sqlalchemy import func, select

from config.settings import get_settings
from notifier import catalog, producer
from notifier.domain.errors import InvalidInput
from notifier.store.db import transaction
from notifier.store.models import Delivery, Message
from tests.helpers import approved_catalogue

PUSH = {"title": "Statement", "body": "Your statement is ready"}
SMS = {"template": "NOTICE", "params": {"amount": "12.00"}, "signature": "Bank"}


@pytest.fixture
def catalogue(migrated):
    approved_catalogue("Bank", {"NOTICE": ("notification", "Statement of ${amount} is ready.")})
    producer.bind_device("alice", "apns", "ab" * 32, "+8613800138000")
    producer.bind_phone("bob", "+8613800138001")


def published(queue: str) -> list[Path]:
    return sorted(get_settings().broker_folder.glob(f"*.{queue}.msg"))


def counts() -> tuple[int, int]:
    with transaction() as s:
        return (
            s.scalar(select(func.count()).select_from(Message)) or 0,
            s.scalar(select(func.count()).select_from(Delivery)) or 0,
        )


def test_supplement_holds_sms_and_publishes_push(catalogue):
    message_id = producer.send("alice", push=PUSH, sms=SMS)
    with transaction() as s:
        rows = {
            d.channel: d
            for d in s.scalars(select(Delivery).where(Delivery.message_id == message_id))
        }
    assert rows["push"].state == "queued"
    assert rows["sms"].state == "standby"
    assert rows["sms"].sms_text == "[Bank]Statement of 12.00 is ready."
    assert len(published("push")) == 1 and published("sms") == []


def test_no_device_under_supplement_goes_straight_to_sms(catalogue):
    producer.send("bob", push=PUSH, sms=SMS)
    assert published("push") == [] and len(published("sms")) == 1


@pytest.mark.parametrize(
    ("sms", "field"),
    [
        ({**SMS, "template": "NOPE"}, "sms.template"),
        ({**SMS, "params": {}}, "sms.params"),
        ({**SMS, "params": {"amount": "1", "extra": "x"}}, "sms.params"),
        ({**SMS, "signature": "Other"}, "sms.signature"),
    ],
)
def test_bad_sms_refused_and_nothing_written_or_enqueued(catalogue, sms, field):
    with pytest.raises(InvalidInput) as err:
        producer.send("alice", push=PUSH, sms=sms)
    assert err.value.field == field
    assert counts() == (0, 0)
    assert published("push") == [] and published("sms") == []


def test_pending_template_refused(catalogue):
    catalog.add_template("DRAFT", "notification", "Draft ${x}")
    with pytest.raises(InvalidInput, match="template DRAFT is pending"):
        producer.send(
            "alice", push=PUSH, sms={"template": "DRAFT", "params": {"x": "1"}, "signature": "Bank"}
        )


def test_user_without_phone_refused_at_send_time(catalogue):
    producer.bind_device("carol", "fcm", "c" * 64)
    with pytest.raises(InvalidInput, match="has no phone number"):
        producer.send("carol", push=PUSH, sms=SMS)
    assert counts() == (0, 0)


def test_same_idempotency_key_gives_one_message_sent_once(catalogue):
    first = producer.send("alice", push=PUSH, sms=SMS, idempotency_key="k-1")
    second = producer.send("alice", push=PUSH, sms=SMS, idempotency_key="k-1")
    assert first == second
    assert counts() == (1, 2)
    assert len(published("push")) == 1


def test_rebinding_a_token_moves_it_to_the_new_user(catalogue):
    producer.bind_device("dave", "apns", "ab" * 32)
    with pytest.raises(InvalidInput, match="no active device"):
        producer.send("alice", policy="push_only", push=PUSH)


def test_promotions_travel_on_the_bulk_lanes(catalogue):
    catalog.add_template("SALE", "promotional", "Sale ${pct} off. Reply STOP to opt out")
    catalog.review("template", "SALE", approve=True)
    producer.send(
        "alice",
        message_class="promotional",
        policy="concurrent",
        push=PUSH,
        sms={"template": "SALE", "params": {"pct": "20%"}, "signature": "Bank"},
    )
    assert len(published("push_bulk")) == 1 and len(published("sms_bulk")) == 1
    assert published("push") == [] and published("sms") == []


def test_an_accepted_message_is_written_whole_with_its_defaults(catalogue):
    """One statement on PostgreSQL (store/accepted.py), the ORM on SQLite: the same rows,
    the columns the code leaves to their defaults included, and the timeline's first event."""
    from notifier.store.models import Event

    producer.bind_device("alice", "fcm", "fcm-token-of-alices-second-phone-0002")
    message_id = producer.send("alice", push=PUSH, sms=SMS, idempotency_key="k-whole")
    with transaction() as s:
        message = s.get(Message, message_id)
        deliveries = s.scalars(select(Delivery).where(Delivery.message_id == message_id)).all()
        events = s.scalars(select(Event).where(Event.message_id == message_id)).all()
    assert message is not None and message.state == "accepted" and message.step == 0
    assert message.idempotency_key == "k-whole" and message.push_body == PUSH["body"]
    assert message.push_data == {} and message.chain is None
    assert sorted((d.channel, d.platform, d.state) for d in deliveries) == [
        ("push", "apns", "queued"),
        ("push", "fcm", "queued"),
        ("sms", None, "standby"),
    ]
    assert {(d.attempts, d.replays, d.step) for d in deliveries} == {(0, 0, 0), (0, 0, 1)}
    assert all(d.created_at == message.created_at for d in deliveries)
    assert [(e.kind, e.detail, e.delivery_id) for e in events] == [
        ("accepted", "supplement transactional", None)
    ]
    assert published("push")  # the queued step went out after commit
