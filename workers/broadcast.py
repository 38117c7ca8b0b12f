"""Queue `broadcast`: fan a broadcast out to its audience, a slice at a time."""

from __future__ import annotations

import uuid

from config.celery_app import BROADCAST_FANOUT
from notifier.pipeline.fanout import continue_later, fan_out
from workers._task import task


@task(BROADCAST_FANOUT)
def fanout(broadcast_id: str) -> bool:
    done = fan_out(uuid.UUID(broadcast_id))
    if not done:
        continue_later([uuid.UUID(broadcast_id)])
    return done
