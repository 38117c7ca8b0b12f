"""Queue `receipts`: at the receipt deadline, decide between "delivered" and SMS fallback."""

from __future__ import annotations

from config.celery_app import RECEIPTS_CHECK
from notifier.pipeline.advance import advance_messages
from workers._ids import parse_ids
from workers._task import task


@task(RECEIPTS_CHECK)
def check(message_ids: list[str]) -> None:
    advance_messages(parse_ids(message_ids))
