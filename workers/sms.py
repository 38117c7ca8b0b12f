"""Queue `sms`: submit a batch of SMS deliveries to the carrier."""

from __future__ import annotations

from config.celery_app import SMS_SEND, app
from notifier.pipeline.sms import send_sms
from workers._ids import parse_ids


@app.task(name=SMS_SEND)
def send(delivery_ids: list[str]) -> int:
    return send_sms(parse_ids(delivery_ids))
