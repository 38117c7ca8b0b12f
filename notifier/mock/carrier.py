"""Mock SMS carrier: SendSms / QuerySendDetails-shaped API and DLR pushes to our webhook."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from fastapi import FastAPI, Form
from fastapi.responses import JSONResponse

from config.settings import get_settings
from notifier.mock.admin import admin_router
from notifier.mock.config import MockConfig
from notifier.mock.fleet import NUMBER_BEHAVIOURS, Callbacks, Recorder, Registry

E164 = re.compile(r"^\+?[1-9]\d{6,14}$")
# SendStatus of QuerySendDetails: 1 waiting for receipt, 2 failed, 3 delivered.
WAITING, FAILED, DELIVERED = 1, 2, 3


def _answer(code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"Code": code, "Message": message, "RequestId": str(uuid.uuid4()), **extra})


def create_app() -> FastAPI:
    settings, config = get_settings(), MockConfig.from_env()
    registry = Registry("delivered", NUMBER_BEHAVIOURS)
    recorder = Recorder()
    sent: dict[str, dict[str, Any]] = {}
    dlrs = Callbacks(
        f"{config.api_url}/v1/sms/receipts",
        config.carrier_key,
        lambda items: items,
        config.dlr_retry_delays,
    )
    app = FastAPI(title="mock carrier")
    app.include_router(admin_router(registry, recorder, dlrs))

    @app.post("/sms/send")
    def send_sms(
        AccessKeyId: str = Form(""),
        PhoneNumbers: str = Form(""),
        SignName: str = Form(""),
        TemplateCode: str = Form(""),
        TemplateParam: str = Form("{}"),
        OutId: str = Form(""),
    ) -> JSONResponse:
        if AccessKeyId != settings.carrier_access_key:
            return _answer("InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if not SignName:
            return _answer("isv.SMS_SIGNATURE_ILLEGAL", "SignName is required")
        if not TemplateCode:
            return _answer("isv.SMS_TEMPLATE_ILLEGAL", "TemplateCode is required")
        try:
            params = json.loads(TemplateParam)
        except ValueError:
            return _answer("isv.INVALID_JSON_PARAM", "TemplateParam is not JSON")
        behaviour = registry.get(PhoneNumbers)
        if not E164.match(PhoneNumbers) or behaviour == "illegal":
            return _answer("isv.MOBILE_NUMBER_ILLEGAL", f"invalid number {PhoneNumbers}")
        biz_id = f"{int(time.time() * 1000)}^{uuid.uuid4().int >> 96}"
        record = {
            "phone": PhoneNumbers,
            "sign_name": SignName,
            "template_code": TemplateCode,
            "params": params,
            "out_id": OutId,
            "biz_id": biz_id,
            "send_time": time.time(),
            "status": WAITING,
        }
        recorder.add(**record)
        sent[biz_id] = record
        ok = behaviour == "delivered"
        record["status"] = DELIVERED if ok else FAILED
        report = {
            "phone_number": PhoneNumbers,
            "send_time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "report_time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "success": ok,
            "err_code": "DELIVERED" if ok else "MK:0001",
            "err_msg": "ok" if ok else "rejected by handset",
            "sms_size": "1",
            "biz_id": biz_id,
            "out_id": OutId,
        }
        dlrs.later(config.dlr_delay, report)
        return _answer("OK", "OK", BizId=biz_id)

    @app.post("/sms/query")
    def query(BizId: str = Form(""), OutId: str = Form("")) -> JSONResponse:
        found = [
            r
            for r in sent.values()
            if (BizId and r["biz_id"] == BizId) or (OutId and r["out_id"] == OutId)
        ]
        details = [
            {
                "PhoneNum": r["phone"],
                "SendStatus": r["status"],
                "BizId": r["biz_id"],
                "OutId": r["out_id"],
                "TemplateCode": r["template_code"],
            }
            for r in found
        ]
        return _answer("OK", "OK", TotalCount=len(details), SmsSendDetailDTOs=details)

    return app
