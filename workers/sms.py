"""Queue `sms`: submit SMS deliveries to the carrier; poll for reports the webhook missed."""

from __future__ import annotations

from config.celery_app import SMS_POLL, SMS_SEND
from notifier.pipeline.sms import send_sms
from notifier.pipeline.sms_poll import poll_reports
from workers._ids import parse_ids
from workers._task import current_lane, taking_turns, task


@task(SMS_SEND)
def send(delivery_ids: list[str]) -> int:
    with taking_turns("sms_bulk"):
        return send_sms(parse_ids(delivery_ids), lane=current_lane())


@task(SMS_POLL)
def poll(delivery_ids: list[str]) -> int:
    return poll_reports(parse_ids(delivery_ids)).accepted
