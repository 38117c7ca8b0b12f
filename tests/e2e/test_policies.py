"""Every policy and trigger, chains, TTL and the verification class, through real processes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from notifier.demo.run import SIGNATURE
from tests.e2e.conftest import final_view
from tests.e2e.flows import DEADLINE, bind, by_channel, kinds, send


def states_of(view: dict[str, Any], channel: str) -> list[str]:
    return [d["state"] for d in by_channel(view, channel)]


def sent_at(view: dict[str, Any]) -> float:
    return datetime.fromisoformat(view["created_at"]).timestamp()


def test_push_only_reaches_the_device_and_never_sms(stack):
    user, _tok, phone = bind(stack, "apns", "online")
    view = final_view(stack, send(stack, user, "push_only").json()["message_id"])
    assert (view["state"], states_of(view, "push"), states_of(view, "sms")) == (
        "delivered",
        ["acked"],
        [],
    )
    assert view["plan"] == [{"channels": ["push"], "deadline": DEADLINE}]
    assert stack.received("carrier", "phone", phone) == []


def test_sms_only_sends_one_sms_and_no_push(stack):
    user, tok, phone = bind(stack, "fcm", "online")
    view = final_view(stack, send(stack, user, "sms_only").json()["message_id"])
    assert (view["state"], states_of(view, "push"), states_of(view, "sms")) == (
        "delivered",
        [],
        ["delivered"],
    )
    assert stack.received("fcm", "token", tok) == []
    assert len(stack.received("carrier", "phone", phone)) == 1


def test_not_opened_trigger_sends_the_sms_when_the_push_arrived_unopened(stack):
    user, _, phone = bind(stack, "apns", "online")  # the app acks arrival; nobody opens it
    view = final_view(stack, send(stack, user, trigger="not_opened").json()["message_id"])
    assert view["trigger"] == "not_opened"
    assert (states_of(view, "push"), states_of(view, "sms")) == (["acked"], ["delivered"])
    [at_carrier] = stack.received("carrier", "phone", phone)
    assert at_carrier["send_time"] >= sent_at(view) + DEADLINE
    assert "fallback" in kinds(view)


def test_not_opened_trigger_opened_push_needs_no_sms(stack):
    user, _, phone = bind(stack, "fcm", "opens")
    view = final_view(stack, send(stack, user, trigger="not_opened").json()["message_id"])
    assert (states_of(view, "push"), states_of(view, "sms")) == (["opened"], ["cancelled"])
    assert view["state"] == "delivered"
    assert stack.received("carrier", "phone", phone) == []


def test_chain_sms_first_then_push_when_the_sms_is_not_delivered(stack):
    user, tok, phone = bind(stack, "apns", "online")
    stack.set_behaviours("carrier", {phone: "undelivered"})
    chain = [{"channel": "sms", "deadline": 2}, {"channel": "push"}]
    view = final_view(stack, send(stack, user, "chain", chain=chain).json()["message_id"])
    assert view["plan"] == [
        {"channels": ["sms"], "deadline": 2},
        {"channels": ["push"], "deadline": DEADLINE},
    ]
    assert (states_of(view, "sms"), states_of(view, "push")) == (["undelivered"], ["acked"])
    assert view["state"] == "delivered"
    assert [d["step"] for d in view["deliveries"] if d["channel"] == "push"] == [1]
    assert len(stack.received("apns", "token", tok)) == 1


def test_chain_delivered_sms_stops_the_chain(stack):
    user, tok, _ = bind(stack, "apns", "online")
    view = final_view(stack, send(stack, user, "chain", chain=["sms", "push"]).json()["message_id"])
    assert (states_of(view, "sms"), states_of(view, "push")) == (["delivered"], ["cancelled"])
    assert stack.received("apns", "token", tok) == []


def test_chain_step_deadline_is_per_step(stack):
    user, _, phone = bind(stack, "fcm", "offline")
    chain = [{"channel": "push", "deadline": 1}, "sms"]
    view = final_view(stack, send(stack, user, "chain", chain=chain).json()["message_id"])
    assert (states_of(view, "push"), states_of(view, "sms")) == (["unconfirmed"], ["delivered"])
    [at_carrier] = stack.received("carrier", "phone", phone)
    assert sent_at(view) + 1 <= at_carrier["send_time"] < sent_at(view) + DEADLINE


def test_ttl_expiring_before_the_fallback_skips_the_sms(stack):
    user, tok, phone = bind(stack, "apns", "offline")
    view = final_view(stack, send(stack, user, ttl=2).json()["message_id"])
    assert view["state"] == "expired"
    assert (states_of(view, "push"), states_of(view, "sms")) == (["unconfirmed"], ["expired"])
    assert "step_expired" in kinds(view)
    assert stack.received("carrier", "phone", phone) == []  # no stale message arrives late
    [pushed] = stack.received("apns", "token", tok)
    expires = datetime.fromisoformat(view["expires_at"]).timestamp()
    assert int(pushed["headers"]["apns-expiration"]) == int(expires)


def verification(user: str, **extra: Any) -> dict[str, Any]:
    sms = {"template": "OTP", "params": {"code": "4821"}, "signature": SIGNATURE}
    return {"user_id": user, "class": "verification", "sms": sms, **extra}


def test_verification_goes_by_sms_only_with_a_short_ttl(stack):
    user, tok, phone = bind(stack, "apns", "online")
    response = stack.api("POST", "/v1/messages", json=verification(user))
    view = final_view(stack, response.json()["message_id"])
    assert (view["class"], view["policy"], view["state"]) == (
        "verification",
        "sms_only",
        "delivered",
    )
    assert by_channel(view, "push") == [] and stack.received("apns", "token", tok) == []
    lifetime = datetime.fromisoformat(view["expires_at"]) - datetime.fromisoformat(
        view["created_at"]
    )
    assert lifetime.total_seconds() == 300
    assert stack.received("carrier", "phone", phone)[0]["template_code"] == "OTP"


@pytest.mark.parametrize("policy", ["push_only", "supplement", "concurrent", "chain"])
def test_verification_is_never_plain_push(stack, policy):
    user, _, _ = bind(stack, "apns", "online")
    body = verification(user, policy=policy, push={"title": "code", "body": "4821"})
    response = stack.api("POST", "/v1/messages", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "policy"


def test_a_template_of_another_class_is_refused(stack):
    user, _, _ = bind(stack, "apns", "online")
    sms = {"template": "OTP", "params": {"code": "4821"}, "signature": SIGNATURE}
    response = send(stack, user, sms=sms)  # a transactional message with a one-time-code template
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "sms.template"
    assert "verification" in response.json()["error"]["rule"]


def test_user_without_a_phone_is_refused_at_send_time_under_a_policy_needing_sms(stack):
    user, tok, _ = bind(stack, "apns", "online")
    bare = f"{user}-nophone"
    body = {"user_id": bare, "platform": "apns", "token": tok[::-1]}
    assert stack.api("POST", "/v1/devices", "device", json=body).status_code == 201
    refused = send(stack, bare)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "user_id"
    assert "no phone number" in refused.json()["error"]["rule"]
    assert send(stack, bare, "push_only").status_code == 202


def test_messages_can_be_found_by_user_state_and_time(stack):
    user, _, _ = bind(stack, "apns", "offline")
    first = final_view(stack, send(stack, user, "push_only").json()["message_id"])
    second = final_view(stack, send(stack, user, "sms_only").json()["message_id"])
    found = stack.api("GET", "/v1/messages", params={"user_id": user}).json()
    assert [m["id"] for m in found["items"]] == [second["id"], first["id"]]
    unconfirmed = stack.api(
        "GET", "/v1/messages", params={"user_id": user, "state": "unconfirmed"}
    ).json()
    assert [m["id"] for m in unconfirmed["items"]] == [first["id"]]
    later = stack.api(
        "GET", "/v1/messages", params={"user_id": user, "since": second["created_at"]}
    ).json()
    assert [m["id"] for m in later["items"]] == [second["id"]]
    bad = stack.api("GET", "/v1/messages", params={"since": "yesterday"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "since"
