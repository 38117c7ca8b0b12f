"""Mock SMS carrier: SendSms / QuerySendDetails-shaped API, DLR and inbound pushes.

Per-number behaviours (set through `/_mock/behaviours`):
- `delivered` (default), `undelivered`, `expired`, `rejected`: submit OK, then a DLR with
  DELIVERED / UNDELIVERED / EXPIRED / REJECTED pushed to our webhook;
- `no_dlr`: submit OK, delivered, but the webhook push is lost (only polling finds it);
- `illegal`, `limit`, `balance`, `throttle`: the submit is refused with
  isv.MOBILE_NUMBER_ILLEGAL, isv.BUSINESS_LIMIT_CONTROL, isv.AMOUNT_NOT_ENOUGH, Throttling.User.
When templates or signatures are registered (`/_mock/catalogue`), others are refused as the
carrier refuses unapproved ones.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import Body, FastAPI, Form
from fastapi.responses import JSONResponse

from config.settings import get_settings
from notifier.mock.admin import admin_router
from notifier.mock.config import MockConfig
from notifier.mock.fleet import Callbacks, Recorder, Registry

E164 = re.compile(r"^\+?[1-9]\d{6,14}$")
# SendStatus of QuerySendDetails: 1 waiting for receipt, 2 failed, 3 delivered.
WAITING, FAILED, DELIVERED = 1, 2, 3
REPORTS = {
    "delivered": "DELIVERED",
    "undelivered": "UNDELIVERED",
    "expired": "EXPIRED",
    "rejected": "REJECTED",
    "no_dlr": "DELIVERED",
}
REFUSALS = {
    "illegal": ("isv.MOBILE_NUMBER_ILLEGAL", "invalid mobile number"),
    "limit": ("isv.BUSINESS_LIMIT_CONTROL", "flow control: too many SMS to this number"),
    "balance": ("isv.AMOUNT_NOT_ENOUGH", "account balance is not enough"),
    "throttle": ("Throttling.User", "request was denied due to user flow control"),
}
BEHAVIOURS = (*REPORTS, *REFUSALS)


def _answer(code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"Code": code, "Message": message, "RequestId": str(uuid.uuid4()), **extra})


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Catalogue:
    templates: set[str] = field(default_factory=set)
    signatures: set[str] = field(default_factory=set)

    def refusal(self, sign_name: str, template_code: str) -> tuple[str, str] | None:
        if not sign_name or (self.signatures and sign_name not in self.signatures):
            return "isv.SMS_SIGNATURE_ILLEGAL", f"signature {sign_name!r} is not approved"
        if not template_code or (self.templates and template_code not in self.templates):
            return "isv.SMS_TEMPLATE_ILLEGAL", f"template {template_code!r} is not approved"
        return None


def _report(record: dict[str, Any]) -> dict[str, Any]:
    code = record["report"]
    return {
        "phone_number": record["phone"],
        "send_time": record["send_date"],
        "report_time": _now(),
        "success": code == "DELIVERED",
        "err_code": code,
        "err_msg": "ok" if code == "DELIVERED" else code.lower(),
        "sms_size": "1",
        "biz_id": record["biz_id"],
        "out_id": record["out_id"],
    }


def _detail(record: dict[str, Any]) -> dict[str, Any]:
    status = DELIVERED if record["report"] == "DELIVERED" else FAILED
    return {
        "PhoneNum": record["phone"],
        "SendStatus": status,
        "ErrCode": record["report"],
        "BizId": record["biz_id"],
        "OutId": record["out_id"],
        "TemplateCode": record["template_code"],
        "SendDate": record["send_date"],
        "ReceiveDate": _now(),
    }


def create_app() -> FastAPI:
    settings, config = get_settings(), MockConfig.from_env()
    registry = Registry("delivered", BEHAVIOURS)
    recorder = Recorder(config.keep_received)
    catalogue = Catalogue()
    sent: dict[str, dict[str, Any]] = {}
    dlrs = Callbacks(
        f"{config.api_url}/v1/sms/receipts",
        config.carrier_key,
        lambda items: items,
        config.dlr_retry_delays,
    )
    inbound = Callbacks(
        f"{config.api_url}/v1/sms/inbound",
        config.carrier_key,
        lambda items: items,
        config.dlr_retry_delays,
    )
    app = FastAPI(title="mock carrier")
    app.include_router(admin_router(registry, recorder, dlrs))

    @app.put("/_mock/catalogue")
    def set_catalogue(
        templates: list[str] = Body(default=[]), signatures: list[str] = Body(default=[])
    ) -> dict[str, int]:
        catalogue.templates, catalogue.signatures = set(templates), set(signatures)
        return {"templates": len(templates), "signatures": len(signatures)}

    @app.post("/_mock/inbound")
    def send_inbound(phone: str = Body(...), content: str = Body(...)) -> dict[str, str]:
        inbound.later(0, {"phone_number": phone, "content": content, "send_time": _now()})
        return {"status": "queued"}

    @app.post("/sms/send")
    def send_sms(
        AccessKeyId: str = Form(""),
        PhoneNumbers: str = Form(""),
        SignName: str = Form(""),
        TemplateCode: str = Form(""),
        TemplateParam: str = Form("{}"),
        OutId: str = Form(""),
    ) -> JSONResponse:
        if config.carrier_latency:
            time.sleep(config.carrier_latency)  # a sync route: runs in the server's thread pool
        if AccessKeyId != settings.carrier_access_key:
            return _answer("InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if refusal := catalogue.refusal(SignName, TemplateCode):
            return _answer(*refusal)
        try:
            params = json.loads(TemplateParam)
        except ValueError:
            return _answer("isv.INVALID_JSON_PARAM", "TemplateParam is not JSON")
        behaviour = registry.get(PhoneNumbers)
        if not E164.match(PhoneNumbers):
            return _answer(*REFUSALS["illegal"])
        if behaviour in REFUSALS:
            return _answer(*REFUSALS[behaviour])
        biz_id = f"{int(time.time() * 1000)}^{uuid.uuid4().int >> 96}"
        record = {
            "phone": PhoneNumbers,
            "sign_name": SignName,
            "template_code": TemplateCode,
            "params": params,
            "out_id": OutId,
            "biz_id": biz_id,
            "send_time": time.time(),
            "send_date": _now(),
            "report": REPORTS[behaviour],
        }
        recorder.add(**record)
        sent[biz_id] = record
        if behaviour != "no_dlr":
            dlrs.later(config.dlr_delay, _report(record))
        return _answer("OK", "OK", BizId=biz_id)

    @app.post("/sms/query")
    def query(BizId: str = Form(""), OutId: str = Form("")) -> JSONResponse:
        found = [
            r
            for r in sent.values()
            if (BizId and r["biz_id"] == BizId) or (OutId and r["out_id"] == OutId)
        ]
        details = [_detail(r) for r in found]
        return _answer("OK", "OK", TotalCount=len(details), SmsSendDetailDTOs=details)

    return app
