"""The walking skeleton's promises, end to end through real processes."""

from __future__ import annotations

import secrets
from datetime import datetime

import psycopg
import pytest

from notifier.demo.run import SIGNATURE, TEMPLATE
from tests.e2e.conftest import final_view
from tests.e2e.flows import DEADLINE, bind, by_channel, kinds, payload, send


@pytest.mark.parametrize("platform", ["apns", "fcm"])
def test_online_device_acks_push_and_no_sms_is_sent(stack, platform):
    user, tok, _ = bind(stack, platform, "online")
    response = send(stack, user)
    assert response.status_code == 202
    view = final_view(stack, response.json()["message_id"])
    assert view["state"] == "delivered"
    [push] = by_channel(view, "push")
    [sms] = by_channel(view, "sms")
    assert push["state"] == "acked"
    assert sms["state"] == "cancelled"
    assert stack.received("carrier", "out_id", sms["id"]) == []
    assert len(stack.received(platform, "token", tok)) == 1
    assert kinds(view)[0] == "accepted" and "acked" in kinds(view)


@pytest.mark.parametrize("platform", ["apns", "fcm"])
def test_offline_device_gets_exactly_one_sms_after_the_deadline(stack, platform):
    user, _, phone = bind(stack, platform, "offline")
    view = final_view(stack, send(stack, user).json()["message_id"])
    assert view["state"] == "delivered"
    [push] = by_channel(view, "push")
    [sms] = by_channel(view, "sms")
    assert push["state"] == "unconfirmed"
    assert sms["state"] == "delivered"  # the carrier's DLR arrived by webhook
    assert sms["sms_text"] == "[DemoBank]Account 1234: a statement of 9.99 is ready in the app."
    assert (sms["sms_encoding"], sms["sms_parts"], sms["sms_cost"]) == ("GSM-7", 1, "0.04500")
    at_carrier = stack.received("carrier", "out_id", sms["id"])
    assert len(at_carrier) == 1
    assert at_carrier[0]["phone"] == phone and at_carrier[0]["template_code"] == TEMPLATE
    due = datetime.fromisoformat(view["created_at"]).timestamp() + DEADLINE
    assert at_carrier[0]["send_time"] >= due  # not a moment before the deadline
    assert {"receipt_missed", "fallback", "sms_submitted", "sms_delivered"} <= set(kinds(view))


@pytest.mark.parametrize("platform", ["apns", "fcm"])
def test_uninstalled_app_invalidates_device_and_falls_back_to_sms(stack, platform):
    user, tok, _ = bind(stack, platform, "uninstalled")
    view = final_view(stack, send(stack, user).json()["message_id"])
    [push] = by_channel(view, "push")
    [sms] = by_channel(view, "sms")
    assert push["state"] == "failed"
    assert push["error_code"] in ("Unregistered", "UNREGISTERED")
    assert sms["state"] == "delivered"
    assert "device_invalidated" in kinds(view)
    # the device is dead now: the next message goes straight to SMS, no push attempted
    again = final_view(stack, send(stack, user).json()["message_id"])
    assert by_channel(again, "push") == []
    assert [d["state"] for d in by_channel(again, "sms")] == ["delivered"]
    assert len(stack.received(platform, "token", tok)) == 1


def test_concurrent_sends_both_channels(stack):
    user, _, _ = bind(stack, "apns", "online")
    view = final_view(stack, send(stack, user, "concurrent").json()["message_id"])
    assert [d["state"] for d in by_channel(view, "push")] == ["acked"]
    assert [d["state"] for d in by_channel(view, "sms")] == ["delivered"]


def test_same_idempotency_key_twice_is_one_message_sent_once(stack):
    user, tok, _ = bind(stack, "apns", "online")
    key = f"order-{secrets.token_hex(4)}"
    first = send(stack, user, idempotency_key=key)
    # the same request retried, this time with the key in the Idempotency-Key header
    headers = {"idempotency-key": key}
    second = stack.api("POST", "/v1/messages", headers=headers, json=payload(user))
    assert first.status_code == second.status_code == 202
    assert first.json()["message_id"] == second.json()["message_id"]
    final_view(stack, first.json()["message_id"])
    assert len(stack.received("apns", "token", tok)) == 1


@pytest.mark.parametrize(
    ("sms", "field"),
    [
        ({"template": "NO_SUCH", "params": {}, "signature": SIGNATURE}, "sms.template"),
        ({"template": TEMPLATE, "params": {"account": "1"}, "signature": SIGNATURE}, "sms.params"),
    ],
)
def test_bad_template_input_is_refused_and_nothing_is_enqueued(stack, sms, field):
    user, tok, _ = bind(stack, "apns", "online")
    response = send(stack, user, sms=sms)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == field and error["rule"]
    assert stack.received("apns", "token", tok) == []
    from sqlalchemy import func, select

    from notifier.store.db import transaction
    from notifier.store.models import Message

    with transaction() as session:
        assert session.scalar(select(func.count()).where(Message.user_id == user)) == 0


def test_api_requires_a_key_with_the_right_scope(stack):
    import requests

    assert requests.post(stack.url("api") + "/v1/messages", json={}, timeout=5).status_code == 401
    denied = stack.api("POST", "/v1/messages", "device", json={})
    assert denied.status_code == 403
    assert "scope send" in denied.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"user_id": 42}', "user_id"),
        (b'{"user_id": "\\u2603\\ud83d\\ude00"}', "user_id"),
        (b'{"user_id": "u1", "policy": "push_only", "push": "hello"}', "push"),
        (
            b'{"user_id": "u1", "policy": "push_only", "push": {"title": "' + b"x" * 300 + b'"}}',
            "push.title",
        ),
        (b'{"user_id": "u1", "policy": "sms_only", "sms": {"template": 7}}', "sms.template"),
        (
            b'{"user_id": "u1", "policy": "sms_only", "sms": {"template": "T", "params": []}}',
            "sms.params",
        ),
    ],
)
def test_malformed_requests_get_a_422_naming_the_field(stack, body, field):
    response = stack.api(
        "POST", "/v1/messages", data=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"].startswith(field) and error["rule"]


def test_malformed_ids_and_numbers_are_refused(stack):
    assert stack.api("GET", "/v1/messages/not-a-uuid").json()["error"]["field"] == "message_id"
    bad_phone = stack.api("PUT", "/v1/users/u-x/phone", json={"phone": "+1 (555) not a number"})
    assert bad_phone.status_code == 422 and bad_phone.json()["error"]["field"] == "phone"
    bad_ack = stack.api("POST", "/v1/acks", "device", json={"acks": [{"delivery_id": "x"}]})
    assert bad_ack.status_code == 422 and "delivery_id" in bad_ack.json()["error"]["field"]


def test_inbox_holds_messages_whatever_channel_carried_them(stack):
    online_user, _, _ = bind(stack, "apns", "online")
    acked = final_view(stack, send(stack, online_user).json()["message_id"])
    assert [d["state"] for d in by_channel(acked, "push")] == ["acked"]
    # the same user loses the app: the next message only arrives by SMS
    stack.set_behaviours("apns", {by_channel(acked, "push")[0]["target"]: "offline"})
    by_sms = final_view(stack, send(stack, online_user).json()["message_id"])
    assert [d["state"] for d in by_channel(by_sms, "sms")] == ["delivered"]
    page = stack.api("GET", f"/v1/users/{online_user}/inbox").json()
    assert [i["message_id"] for i in page["items"]] == [by_sms["id"], acked["id"]]
    assert page["items"][0]["channels"] == ["push", "sms"] and page["items"][1]["channels"] == [
        "push"
    ]
    assert page["unread"] == 2
    marked = stack.api("POST", f"/v1/users/{online_user}/inbox/read", json={"message_ids": None})
    assert marked.json() == {"marked": 2}
    assert stack.api("GET", f"/v1/users/{online_user}/inbox").json()["unread"] == 0


def test_a_huge_body_is_refused_before_it_is_read(stack):
    huge = b'{"user_id": "u1", "push": {"body": "' + b"x" * (2 << 20) + b'"}}'
    response = stack.api(
        "POST", "/v1/messages", data=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"


def test_each_process_type_names_its_database_connections(stack):
    user, _, _ = bind(stack, "apns", "online")
    final_view(stack, send(stack, user).json()["message_id"])
    url = stack.env["NOTIFIER_DATABASE_URL"].replace("+psycopg", "")
    with psycopg.connect(url) as conn:
        names = {
            name
            for (name,) in conn.execute(
                "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()"
            )
        }
    # What pg_stat_activity shows an operator looking for who holds a lock or runs a query.
    assert {"notifier api", "notifier worker broadcast,push,push_bulk"} <= names
    assert "notifier worker maintenance,receipts" in names
