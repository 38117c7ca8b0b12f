"""How many tasks wait in broker queues: for the metrics page, and for bulk lanes deciding
whether to give way (notifier.give_way), which asks before every batch."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence

import redis

from config.settings import get_settings

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def client_for(url: str) -> redis.Redis:
    # One client (and connection pool) per process: the bulk lanes ask before every batch.
    # redis-py notices a fork and opens fresh connections in the child.
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)


def readable() -> bool:
    """Whether this broker's queue depths can be read (Redis lists, the filesystem folder)."""
    broker = get_settings().broker
    return broker.startswith(("redis://", "rediss://", "unix://", "filesystem://"))


def queue_depths(queues: Sequence[str] | None = None) -> dict[str, int]:
    """Tasks waiting per queue (all of notifier's when not told); ValueError for a broker
    whose depths cannot be read here."""
    from config.celery_app import QUEUES

    settings = get_settings()
    names = list(queues or QUEUES)
    if settings.uses_filesystem_broker:
        folder = settings.broker_folder
        return {q: sum(1 for _ in folder.glob(f"*.{q}.msg")) for q in names}
    if not readable():
        scheme = settings.broker.split(":", 1)[0]
        raise ValueError(f"queue depths are read from Redis or the filesystem, not {scheme}")
    pipe = client_for(settings.broker).pipeline(transaction=False)
    for q in names:
        pipe.llen(f"{settings.broker_key_prefix}{q}")
    return {q: int(n) for q, n in zip(names, pipe.execute(), strict=True)}


# With Redis away, every transactional task and every bulk batch asks; one warning per this
# many seconds says so without burying the log under identical lines.
WARN_EVERY_SECONDS = 60.0


class _Unreadable:
    """Failed reads since the last warning, and when that warning went out."""

    warned_at: float | None = None
    failures = 0


def depths_if_known(queues: Sequence[str]) -> dict[str, int] | None:
    """queue_depths for callers that only adjust their pace by it (bulk lanes giving way, the
    sweep sparing a backlog, a transactional task deciding to top up): None when the
    broker's depths cannot be read here or now."""
    if not readable():
        return None
    try:
        depths = queue_depths(queues)
    except (redis.RedisError, OSError) as exc:
        _unreadable(exc)
        return None
    if _Unreadable.warned_at is not None:
        log.info("queue depths readable again")
        _Unreadable.warned_at, _Unreadable.failures = None, 0
    return depths


def _unreadable(exc: Exception) -> None:
    _Unreadable.failures += 1
    now = time.monotonic()
    last = _Unreadable.warned_at
    if last is None or now - last >= WARN_EVERY_SECONDS:
        log.warning(
            "queue depths unreadable (%s); failed reads since the last warning: %d",
            exc,
            _Unreadable.failures,
        )
        _Unreadable.warned_at, _Unreadable.failures = now, 0
