"""Device binding alerts, user-bound device keys and masked logs, through real processes."""

from __future__ import annotations

from typing import Any

from notifier.demo.stack import Stack
from notifier.domain.masking import mask_phone
from tests.e2e.conftest import final_view, wait_for
from tests.e2e.flows import bind, send, token

LINKED, MOVED = "security.device_linked", "security.device_moved"


def notices(stack: Stack, phone: str, template: str) -> list[dict[str, Any]]:
    return [r for r in stack.received("carrier", "phone", phone) if r["template_code"] == template]


def bind_token(stack: Stack, user: str, platform: str, tok: str, key: str = "device") -> Any:
    body = {"user_id": user, "platform": platform, "token": tok}
    return stack.api("POST", "/v1/devices", key, json=body)


def test_a_second_device_is_announced_by_sms_before_it_receives_anything(stack):
    user, _, phone = bind(stack, "apns", "online")
    assert notices(stack, phone, LINKED) == []  # the first device needs no notice
    new = token("fcm")
    stack.set_behaviours("fcm", {new: "online"})
    assert bind_token(stack, user, "fcm", new).status_code == 201
    # a message sent right away must not reach the new device ahead of the notice
    final_view(stack, send(stack, user, "push_only").json()["message_id"])
    [notice] = wait_for(lambda: notices(stack, phone, LINKED), what="the security notice")
    assert notice["params"]["platform"] == "Android"

    def reaches_new_device() -> list[dict[str, Any]]:
        final_view(stack, send(stack, user, "push_only").json()["message_id"])
        return list(stack.received("fcm", "token", new))

    pushes = wait_for(reaches_new_device, what="the new device to be released")
    assert min(p["received_at"] for p in pushes) >= notice["received_at"]


def test_a_token_moved_to_another_user_tells_both(stack):
    _old_owner, tok, old_phone = bind(stack, "apns", "online")
    new_owner, _, new_phone = bind(stack, "fcm", "online")
    assert bind_token(stack, new_owner, "apns", tok).status_code == 201
    wait_for(lambda: notices(stack, old_phone, MOVED), what="the notice to the previous owner")
    wait_for(lambda: notices(stack, new_phone, LINKED), what="the notice to the new owner")


def test_a_user_bound_device_key_acts_for_its_user_only(stack):
    user, _, _ = bind(stack, "apns", "offline")
    other, _, _ = bind(stack, "apns", "offline")
    issued = stack.api("POST", f"/v1/users/{user}/device-keys")
    assert issued.status_code == 201
    stack.keys["ann-app"] = issued.json()["api_key"]
    assert bind_token(stack, other, "apns", token("apns"), "ann-app").status_code == 403
    # it may not acknowledge another user's push, nor send, nor read
    view = final_view(stack, send(stack, other, "push_only").json()["message_id"])
    [push] = [d for d in view["deliveries"] if d["channel"] == "push"]
    ack = stack.api("POST", "/v1/acks", "ann-app", json={"acks": [{"delivery_id": push["id"]}]})
    assert ack.json() == {"accepted": 0, "ignored": 1}
    assert stack.api("GET", f"/v1/messages/{view['id']}", "ann-app").status_code == 403
    assert stack.api("POST", "/v1/messages", "ann-app", json={}).status_code == 403


def test_phone_numbers_are_masked_in_every_log(stack):
    user, _, phone = bind(stack, "apns", "online")
    new = token("apns")
    assert bind_token(stack, user, "apns", new).status_code == 201
    wait_for(lambda: notices(stack, phone, LINKED), what="the security notice")
    logs = {
        path.name: path.read_text(errors="replace")
        for path in (stack.home / "logs").glob("*.log")
        if not path.name.startswith(("apns", "fcm", "carrier"))  # the mocks stand for others
    }
    assert logs, "no logs written"
    assert not [name for name, text in logs.items() if phone in text]
    assert any(mask_phone(phone) in text for text in logs.values())
