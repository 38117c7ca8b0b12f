"""The one decorator for notifier tasks: stable name, and retries while the database is away.

A task that loses its database connection (server restarted, failover) is retried with
backoff instead of being dropped; the maintenance sweep is the second net under it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from config.celery_app import app
from notifier import transactional_seen
from notifier.give_way import give_way
from notifier.store.db import DATABASE_AWAY


def task(name: str, retry_when_database_away: bool = True) -> Callable[[Callable[..., Any]], Any]:
    """`retry_when_database_away=False` for periodic tasks: the next beat is their retry."""
    return app.task(  # type: ignore[no-any-return]
        name=name,
        autoretry_for=DATABASE_AWAY if retry_when_database_away else (),
        retry_backoff=1,
        retry_backoff_max=15,
        retry_jitter=True,
        max_retries=20,
    )


def current_lane() -> str | None:
    """The queue the running task was taken from (push, push_bulk, …), if known."""
    from celery import current_task

    info = current_task.request.delivery_info if current_task else None
    return str((info or {}).get("routing_key") or "") or None


def on_bulk_lane() -> bool:
    """Whether the running task was taken from a bulk lane (push_bulk, sms_bulk)."""
    return (current_lane() or "").endswith("_bulk")


@contextmanager
def taking_turns(bulk_lane: str) -> Iterator[None]:
    """Around a send task's batch: on the bulk lane it gives way first (notifier.give_way);
    on the transactional lane it leaves its mark after (notifier.transactional_seen), off a
    one-time code's path."""
    bulk = on_bulk_lane()
    if bulk:
        give_way(bulk_lane)
    yield
    if not bulk:
        transactional_seen.mark()
