"""Figure R: a no-op Celery task, one per message, through the same broker and settings.

The worker is started with `-I bench.noop -Q bench`; each task only counts itself in Redis,
so the bench knows when all have run.
"""

from __future__ import annotations

import redis

from config.celery_app import app
from config.settings import get_settings

NOOP = "bench.noop"
QUEUE = "bench"
_client: redis.Redis | None = None


def counter_key() -> str:
    return f"{get_settings().broker_key_prefix}bench:noop:done"


@app.task(name=NOOP)
def noop() -> None:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(get_settings().broker)
    _client.incr(counter_key())
