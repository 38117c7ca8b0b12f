"""Queue `sms`: submit SMS deliveries to the carrier; poll for reports the webhook missed."""

from __future__ import annotations

from config.celery_app import SMS_POLL, SMS_SEND
from notifier import transactional_seen
from notifier.give_way import give_way
from notifier.pipeline.sms import send_sms
from notifier.pipeline.sms_poll import poll_reports
from workers._ids import parse_ids
from workers._task import current_lane, on_bulk_lane, task


@task(SMS_SEND)
def send(delivery_ids: list[str]) -> int:
    if on_bulk_lane():
        give_way("sms_bulk")
        return send_sms(parse_ids(delivery_ids), lane=current_lane())
    sent = send_sms(parse_ids(delivery_ids), lane=current_lane())
    transactional_seen.mark()  # after the send: off a one-time code's path
    return sent


@task(SMS_POLL)
def poll(delivery_ids: list[str]) -> int:
    return poll_reports(parse_ids(delivery_ids)).accepted
