"""Queue `push`: deliver a batch of push deliveries to APNs / FCM."""

from __future__ import annotations

from config.celery_app import PUSH_SEND
from notifier import transactional_seen
from notifier.give_way import give_way
from notifier.pipeline.push import send_push
from workers._ids import parse_ids
from workers._task import current_lane, on_bulk_lane, task


@task(PUSH_SEND)
def send(delivery_ids: list[str]) -> int:
    if on_bulk_lane():
        give_way("push_bulk")
        return send_push(parse_ids(delivery_ids), lane=current_lane())
    sent = send_push(parse_ids(delivery_ids), lane=current_lane())
    transactional_seen.mark()  # after the send: off a one-time code's path
    return sent
