"""Queue `receipts`: at the receipt deadline, decide between "delivered" and SMS fallback."""

from __future__ import annotations

from datetime import datetime

from config.celery_app import RECEIPTS_CHECK, RECEIPTS_DUE
from notifier.pipeline.advance import advance_due, advance_messages
from workers._ids import parse_ids
from workers._task import task


# Checks by message id: kept for tasks published before slot checks existed.
@task(RECEIPTS_CHECK)
def check(message_ids: list[str]) -> None:
    advance_messages(parse_ids(message_ids))


@task(RECEIPTS_DUE)
def due(until: str) -> int:
    """The check of one time slot: every message due by its end (see publish.receipts_due)."""
    return advance_due(datetime.fromisoformat(until))
