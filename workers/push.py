"""Queue `push`: deliver a batch of push deliveries to APNs / FCM."""

from __future__ import annotations

from config.celery_app import PUSH_SEND
from notifier.pipeline.push import send_push
from workers._ids import parse_ids
from workers._task import current_lane, taking_turns, task


@task(PUSH_SEND)
def send(delivery_ids: list[str]) -> int:
    with taking_turns("push_bulk"):
        return send_push(parse_ids(delivery_ids), lane=current_lane())
