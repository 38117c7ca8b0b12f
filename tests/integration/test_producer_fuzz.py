"""The producer API fed anything: wrong types, huge and odd strings, bad ids and numbers.

Every call either succeeds or raises InvalidInput / Conflict naming a field, and a refused
call leaves no row behind.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from notifier import binding, producer
from notifier.domain.errors import Conflict, InvalidInput
from notifier.store.db import transaction
from notifier.store.models import Delivery, Device, Message
from tests.helpers import approved_catalogue

ODD_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "\u202e", "😀" * 50, "x" * 5000, "+1 (555)", "-1", "1e9"]),
)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), ODD_TEXT)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = [
    "user_id", "policy", "class", "trigger", "chain", "push", "sms", "ttl",
    "receipt_deadline", "idempotency_key",
]  # fmt: skip
GOOD: dict[str, Any] = {
    "user_id": "ann",
    "push": {"title": "Hi", "body": "there"},
    "sms": {"template": "NOTE", "params": {"n": "1"}, "signature": "Bank"},
}


def counts() -> tuple[int, int, int]:
    with transaction() as s:
        return tuple(  # type: ignore[return-value]
            s.scalar(select(func.count()).select_from(t)) or 0 for t in (Message, Delivery, Device)
        )


@pytest.fixture
def ready(migrated: str) -> None:
    approved_catalogue("Bank", {"NOTE": ("notification", "Statement ${n} is ready.")})
    producer.bind_device("ann", "apns", "ab" * 32, "+8613800138000")


@given(st.dictionaries(st.sampled_from(FIELDS), VALUE, max_size=5))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_send_refuses_cleanly_or_accepts(ready: None, changes: dict[str, Any]) -> None:
    before = counts()
    try:
        producer.send_payload({**GOOD, **changes})
    except InvalidInput as exc:
        assert exc.field and exc.rule
        assert counts() == before
    except Conflict:
        assert counts() == before


@given(
    st.fixed_dictionaries(
        {"user_id": VALUE, "platform": st.one_of(VALUE, st.sampled_from(["apns", "fcm"]))},
        optional={"token": VALUE, "phone": VALUE},
    )
)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_bind_refuses_cleanly_or_binds(ready: None, payload: dict[str, Any]) -> None:
    before = counts()
    try:
        binding.bind_device_payload(payload)
    except InvalidInput as exc:
        assert exc.field and exc.rule
        assert counts() == before


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: producer.ack("not-a-uuid"), "acks[0].delivery_id"),
        (lambda: producer.ack("00000000-0000-0000-0000-000000000000", "seen"), "kind"),
        (lambda: producer.bind_phone("ann", "+86 138"), "phone"),
        (lambda: producer.bind_phone("a" * 200, "+8613800138000"), "user_id"),
        (lambda: producer.send("ann", policy="push_only", push={"body": "x" * 5000}), "push.body"),
    ],
)
def test_malformed_calls_name_the_field(ready: None, call: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        call()
    assert err.value.field == field


@pytest.mark.parametrize(
    "changes",
    [
        {"push": {"title": "a\x00b", "body": "x"}},
        {"push": {"title": "t", "body": "b", "data": {"k\x00": "v"}}},
        {"sms": {"template": "NOTE", "params": {"n": "1\x00"}, "signature": "Bank"}},
        {"idempotency_key": "k\x00"},
    ],
)
def test_nul_characters_are_refused_on_every_database(ready: None, changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        producer.send_payload({**GOOD, **changes})
    assert counts() == (0, 0, 1)
