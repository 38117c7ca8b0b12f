"""When transactional work last ran, as the bulk lanes see it.

A transactional worker takes its task off the broker at once, so the queue the bulk lanes
look at before each batch (notifier.give_way) is empty nearly always, even while one-time
codes stream through at a hundred a second. So each transactional task leaves a mark, a key
in the broker's Redis that expires after HOLD_SECONDS (a file's time on the filesystem
broker), and a bulk lane that finds it yields the CPU (notifier.autogroup) until it expires.
A process writes the mark at most every HOLD_SECONDS / 4, after its task's work: one Redis
command a few times a second, never on a one-time code's path.
"""

from __future__ import annotations

import time
from pathlib import Path

import redis

from config.settings import Settings, get_settings
from notifier.queue_depth import client_for, readable

HOLD_SECONDS = 2.0
KEY = "notifier.transactional_seen"


def _path(settings: Settings) -> Path:
    return settings.broker_folder / KEY


def _key(settings: Settings) -> str:
    return f"{settings.broker_key_prefix}{KEY}"


class _Marked:
    at: float | None = None  # when this process last wrote the mark (time.monotonic())


def mark() -> None:
    """A transactional task ran here. Errors are swallowed: the mark only tunes the pace."""
    now = time.monotonic()
    if _Marked.at is not None and now - _Marked.at < HOLD_SECONDS / 4:
        return
    _Marked.at = now
    settings = get_settings()
    try:
        if settings.uses_filesystem_broker:
            _path(settings).touch()
        elif readable():
            client = client_for(settings.broker)
            client.set(_key(settings), b"1", px=int(HOLD_SECONDS * 1000))
    except (redis.RedisError, OSError):
        _Marked.at = None  # try again at the next task


def recent() -> bool | None:
    """Whether transactional work ran within HOLD_SECONDS; None when this broker cannot
    say (AMQP) or cannot now (Redis away)."""
    settings = get_settings()
    try:
        if settings.uses_filesystem_broker:
            path = _path(settings)
            return path.exists() and time.time() - path.stat().st_mtime < HOLD_SECONDS
        if not readable():
            return None
        client = client_for(settings.broker)
        return bool(client.exists(_key(settings)))
    except (redis.RedisError, OSError):
        return None


def forget() -> None:
    """For tests: this process wrote no mark yet."""
    _Marked.at = None
