"""SMS end to end: reports by webhook and by polling, frequency limits, refusals, opt-out."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

import requests

from notifier.demo.run import SIGNATURE, TEMPLATE
from notifier.demo.stack import Stack
from tests.e2e.conftest import final_view, wait_for


def phone_user(stack: Stack, behaviour: str = "delivered") -> tuple[str, str]:
    user, phone = f"p-{secrets.token_hex(4)}", f"+86137{secrets.randbelow(10**8):08d}"
    stack.set_behaviours("carrier", {phone: behaviour})
    assert stack.api("PUT", f"/v1/users/{user}/phone", json={"phone": phone}).ok
    return user, phone


CLASS_OF = {"OTP": "verification", "PROMO": "promotional"}


def sms_only(stack: Stack, user: str, template: str, params: dict[str, str]) -> Any:
    body = {
        "user_id": user,
        "policy": "sms_only",
        "class": CLASS_OF.get(template, "transactional"),
        "sms": {"template": template, "params": params, "signature": SIGNATURE},
    }
    return stack.api("POST", "/v1/messages", json=body)


def the_sms(view: dict[str, Any]) -> dict[str, Any]:
    [sms] = [d for d in view["deliveries"] if d["channel"] == "sms"]
    return dict(sms)


def test_report_lost_by_the_webhook_is_found_by_polling(stack):
    user, phone = phone_user(stack, "no_dlr")
    response = sms_only(stack, user, TEMPLATE, {"account": "77", "amount": "1.00"})
    view = final_view(stack, response.json()["message_id"])
    sms = the_sms(view)
    assert (view["state"], sms["state"]) == ("delivered", "delivered")
    assert len(stack.received("carrier", "phone", phone)) == 1


def test_undelivered_report_fails_the_message(stack):
    user, _ = phone_user(stack, "undelivered")
    view = final_view(
        stack, sms_only(stack, user, TEMPLATE, {"account": "1", "amount": "2"}).json()["message_id"]
    )
    sms = the_sms(view)
    assert (view["state"], sms["state"], sms["error_code"]) == (
        "failed",
        "undelivered",
        "UNDELIVERED",
    )


def test_carrier_refusal_is_permanent_with_its_code(stack):
    user, _ = phone_user(stack, "illegal")
    view = final_view(
        stack, sms_only(stack, user, TEMPLATE, {"account": "1", "amount": "2"}).json()["message_id"]
    )
    sms = the_sms(view)
    assert (sms["state"], sms["error_code"]) == ("failed", "isv.MOBILE_NUMBER_ILLEGAL")
    assert [a["outcome"] for a in sms["attempts"]] == ["invalid_target"]


def _not_at_the_top_of_the_hour() -> None:
    """The hour window is clock-aligned: do not start a burst in an hour's last seconds."""
    now = datetime.now(UTC)
    if now.minute == 59 and now.second >= 40:
        time.sleep(61 - now.second)


def test_sixth_verification_code_within_the_hour_is_rate_limited(stack):
    user, phone = phone_user(stack)
    _not_at_the_top_of_the_hour()
    ids = [
        sms_only(stack, user, "OTP", {"code": f"{4000 + i}"}).json()["message_id"] for i in range(6)
    ]
    views = [final_view(stack, i) for i in ids]
    states = sorted(the_sms(v)["state"] for v in views)
    assert states == ["delivered"] * 5 + ["rate_limited"]
    limited = next(v for v in views if the_sms(v)["state"] == "rate_limited")
    assert the_sms(limited)["error_detail"] == "verification: 5 per hour per number and signature"
    assert "sms_rate_limited" in [e["kind"] for e in limited["timeline"]]
    assert len(stack.received("carrier", "phone", phone)) == 5


def test_unapproved_template_is_refused_at_send_time(stack):
    code = f"DRAFT_{secrets.token_hex(3).upper()}"
    created = stack.api(
        "POST",
        "/v1/sms/templates",
        "admin",
        json={"code": code, "kind": "notification", "content": "Hello ${name}"},
    )
    assert created.status_code == 201 and created.json()["status"] == "pending"
    user, phone = phone_user(stack)
    refused = sms_only(stack, user, code, {"name": "Ann"})
    assert refused.status_code == 422
    assert refused.json()["error"] == {
        "code": "invalid_input",
        "message": f"sms.template: template {code} is pending",
        "field": "sms.template",
        "rule": f"template {code} is pending",
    }
    review = stack.api(
        "POST", f"/v1/sms/templates/{code}/review", "admin", json={"decision": "approve"}
    )
    assert review.json()["status"] == "approved"
    assert sms_only(stack, user, code, {"name": "Ann"}).status_code == 202
    edited = stack.api(
        "PATCH", f"/v1/sms/templates/{code}", "admin", json={"content": "Hi ${name}"}
    )
    assert edited.json()["status"] == "pending"  # an edit goes back to review
    assert sms_only(stack, user, code, {"name": "Ann"}).status_code == 422
    assert len(stack.received("carrier", "phone", phone)) <= 1


def test_stop_reply_opts_the_number_out_of_promotions(stack):
    user, phone = phone_user(stack)
    requests.post(
        f"{stack.url('carrier')}/_mock/inbound", json={"phone": phone, "content": "STOP"}, timeout=5
    ).raise_for_status()

    def opted_out() -> bool:
        from notifier import catalog

        return catalog.is_opted_out(phone)

    wait_for(opted_out, 10, "the STOP reply to arrive")
    view = final_view(stack, sms_only(stack, user, "PROMO", {"pct": "20%"}).json()["message_id"])
    assert (the_sms(view)["state"], the_sms(view)["error_code"]) == ("failed", "opted_out")
    assert stack.received("carrier", "phone", phone) == []


def test_preview_shows_encoding_parts_and_cost(stack):
    body = {
        "template": TEMPLATE,
        "params": {"account": "€€€", "amount": "1"},
        "signature": SIGNATURE,
        "phone": "+8613800138000",
    }
    preview = stack.api("POST", "/v1/sms/preview", json=body).json()
    assert preview["encoding"] == "GSM-7" and preview["parts"] == 1
    # each € takes two septets, and so do the [ ] around the signature (GSM extension table)
    assert preview["units"] == len(preview["text"]) + 3 + 2
    assert preview["cost"] == "0.045"


def test_carrier_client_submits_a_batch_concurrently_and_classifies_each(stack):
    from notifier.demo.stack import free_port
    from notifier.domain.outcomes import Kind
    from notifier.providers.carrier import CarrierClient, SmsSubmit

    phones = [f"+86136{secrets.randbelow(10**8):08d}" for _ in range(12)]
    stack.set_behaviours("carrier", {phones[0]: "illegal"})
    batch = [
        SmsSubmit(p, SIGNATURE, TEMPLATE, {"account": "1", "amount": "£2"}, f"out-{i}")
        for i, p in enumerate(phones)
    ]
    key = stack.env["NOTIFIER_CARRIER_ACCESS_KEY"]
    client = CarrierClient(stack.url("carrier"), key, concurrency=4)
    outcomes = client.submit_all(batch)
    assert [o.kind for o in outcomes] == [Kind.INVALID_TARGET] + [Kind.SENT] * 11
    got = {r["out_id"]: r for r in stack.received("carrier") if r["phone"] in phones}
    assert set(got) == {f"out-{i}" for i in range(1, 12)}
    assert got["out-3"]["params"] == {"account": "1", "amount": "£2"}  # UTF-8 form body intact
    assert client.find_by_out_id("out-3") == outcomes[3].provider_ref
    refused = CarrierClient(f"http://127.0.0.1:{free_port()}", key).submit_all(batch[:2])
    assert [(o.kind, o.error_code) for o in refused] == [(Kind.RETRY, "connection")] * 2
