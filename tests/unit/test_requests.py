from collections.abc import Callable

import pytest

from notifier.domain.errors import InvalidInput
from notifier.domain.policy import Policy
from notifier.domain.requests import (
    MAX_ACKS_PER_CALL,
    Limits,
    parse_ack,
    parse_acks,
    parse_bind,
    parse_send,
)

LIMITS = Limits(receipt_deadline_default=30, receipt_deadline_min=15)
PUSH = {"title": "t", "body": "b"}
SMS = {"template": "T1", "params": {"a": "1"}}


def refused(call: Callable[..., object], *args: object) -> tuple[str, str]:
    with pytest.raises(InvalidInput) as err:
        call(*args)
    return err.value.field, err.value.rule


def test_send_defaults_to_supplement_with_default_deadline():
    req = parse_send({"user_id": "u1", "push": PUSH, "sms": SMS}, LIMITS)
    assert req.policy is Policy.SUPPLEMENT
    assert req.receipt_deadline == 30
    assert req.sms is not None and req.sms.params == {"a": "1"}


def test_push_only_ignores_sms_and_needs_push():
    req = parse_send({"user_id": "u1", "policy": "push_only", "push": PUSH}, LIMITS)
    assert req.sms is None
    assert refused(parse_send, {"user_id": "u1", "policy": "push_only"}, LIMITS)[0] == "push"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"push": PUSH, "sms": SMS}, "user_id"),
        ({"user_id": "u 1", "push": PUSH, "sms": SMS}, "user_id"),
        ({"user_id": "u1", "policy": "sometimes", "push": PUSH, "sms": SMS}, "policy"),
        ({"user_id": "u1", "push": {"title": ""}, "sms": SMS}, "push.body"),
        ({"user_id": "u1", "push": {**PUSH, "data": {"k": 1}}, "sms": SMS}, "push.data"),
        ({"user_id": "u1", "push": {**PUSH, "data": {"nid": "x"}}, "sms": SMS}, "push.data.nid"),
        ({"user_id": "u1", "push": PUSH}, "sms"),
        ({"user_id": "u1", "push": PUSH, "sms": {"params": {}}}, "sms.template"),
        ({"user_id": "u1", "push": PUSH, "sms": SMS, "receipt_deadline": 5}, "receipt_deadline"),
        ({"user_id": "u1", "push": PUSH, "sms": SMS, "receipt_deadline": "30"}, "receipt_deadline"),
        ({"user_id": "u1", "push": PUSH, "sms": SMS, "ttl": 0}, "ttl"),
        ({"user_id": "u1", "push": PUSH, "sms": SMS, "idempotency_key": 7}, "idempotency_key"),
    ],
)
def test_send_refusals_name_the_field(payload, field):
    assert refused(parse_send, payload, LIMITS)[0] == field


def test_deadline_rule_says_the_range():
    _field, rule = refused(
        parse_send, {"user_id": "u", "push": PUSH, "sms": SMS, "receipt_deadline": 1}, LIMITS
    )
    assert rule == "must be between 15 and 259200 seconds, got 1"


def test_bind_normalises_phone_to_e164():
    req = parse_bind(
        {"user_id": "u1", "platform": "apns", "token": "ab" * 32, "phone": "+86 138 0013 8000"}
    )
    assert req.phone == "+8613800138000"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"user_id": "u1", "platform": "wns", "token": "ab" * 32}, "platform"),
        ({"user_id": "u1", "platform": "apns", "token": "xyz"}, "token"),
        ({"user_id": "u1", "platform": "fcm", "token": "short"}, "token"),
        ({"user_id": "u1", "platform": "apns", "token": "ab" * 32, "phone": "12345"}, "phone"),
        ({"user_id": "u1", "platform": "apns", "token": "ab" * 32, "phone": "+861234"}, "phone"),
    ],
)
def test_bind_refusals_name_the_field(payload, field):
    assert refused(parse_bind, payload)[0] == field


def test_ack_kinds():
    assert parse_ack({"delivery_id": "x"}) == ("x", "received")
    assert refused(parse_ack, {"delivery_id": "x", "kind": "seen"})[0] == "kind"
    assert refused(parse_ack, {})[0] == "delivery_id"


def test_ack_batches_are_bounded_and_name_the_bad_item():
    ok = [{"delivery_id": f"d{i}"} for i in range(MAX_ACKS_PER_CALL)]
    assert len(parse_acks(ok)) == MAX_ACKS_PER_CALL
    field, rule = refused(parse_acks, [*ok, {"delivery_id": "one too many"}])
    assert field == "acks" and str(MAX_ACKS_PER_CALL) in rule
    assert (
        refused(parse_acks, [{"delivery_id": "a"}, {"kind": "opened"}])[0] == "acks[1].delivery_id"
    )


# --- classes, triggers, chains ------------------------------------------------------------


def test_verification_defaults_to_sms_only_with_a_short_ttl():
    req = parse_send({"user_id": "u1", "class": "verification", "sms": SMS}, LIMITS)
    assert (req.policy, req.ttl, req.push) == (Policy.SMS_ONLY, 300, None)
    assert refused(
        parse_send, {"user_id": "u1", "class": "verification", "sms": SMS, "ttl": 3600}, LIMITS
    ) == ("ttl", "must be between 1 and 1800 seconds, got 3600")


@pytest.mark.parametrize("policy", ["push_only", "supplement", "concurrent", "chain"])
def test_verification_is_never_plain_push(policy):
    payload = {"user_id": "u1", "class": "verification", "policy": policy, "push": PUSH}
    field, rule = refused(parse_send, {**payload, "sms": SMS}, LIMITS)
    assert field == "policy" and "never plain push" in rule


def test_verification_concurrent_when_allowed():
    allowing = Limits(receipt_deadline_default=30, verification_concurrent=True)
    payload = {"user_id": "u1", "class": "verification", "policy": "concurrent"}
    req = parse_send({**payload, "push": PUSH, "sms": SMS}, allowing)
    assert req.policy is Policy.CONCURRENT


def test_chain_written_as_channels_or_steps():
    req = parse_send(
        {
            "user_id": "u1",
            "policy": "chain",
            "chain": ["sms", {"channel": "push", "deadline": 60}],
            "push": PUSH,
            "sms": SMS,
        },
        LIMITS,
    )
    assert [(s.channels, s.deadline) for s in req.plan] == [(("sms",), 30), (("push",), 60)]
    assert req.chain == [
        {"channels": ["sms"], "deadline": 30},
        {"channels": ["push"], "deadline": 60},
    ]


@pytest.mark.parametrize(
    ("chain", "field", "rule"),
    [
        (None, "chain", "a list of 1-2 steps"),
        (["push", "push"], "chain[1]", "appears twice"),
        (["fax"], "chain[0]", "a step is"),
        ([{"channel": "push", "deadline": 1}], "chain[0].deadline", "between 15 and"),
    ],
)
def test_bad_chains_name_the_step(chain, field, rule):
    payload = {"user_id": "u1", "policy": "chain", "chain": chain, "push": PUSH, "sms": SMS}
    got_field, got_rule = refused(parse_send, payload, LIMITS)
    assert got_field == field and rule in got_rule


def test_chain_only_with_policy_chain_and_trigger_names():
    payload = {"user_id": "u1", "push": PUSH, "sms": SMS}
    assert refused(parse_send, {**payload, "chain": ["sms"]}, LIMITS)[0] == "chain"
    assert refused(parse_send, {**payload, "trigger": "not_seen"}, LIMITS)[0] == "trigger"
    assert refused(parse_send, {**payload, "class": "marketing"}, LIMITS)[0] == "class"
