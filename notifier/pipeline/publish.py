"""Publishing task messages. Only ids cross the broker; the database holds the rest."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from config.settings import get_settings

log = logging.getLogger(__name__)


def _send(name: str, args: list[object], countdown: float | None = None) -> bool:
    """Publish; on failure log and return False. The rows are committed already, and the
    maintenance sweep re-publishes anything that was never picked up, so nothing is lost."""
    from config.celery_app import app_for

    try:
        app_for(get_settings()).send_task(name, args=args, countdown=countdown)
    except Exception:  # kombu raises many transport errors; all mean "not published"
        log.exception("publish of %s failed; the sweep will re-publish", name)
        return False
    return True


def push(delivery_ids: Sequence[uuid.UUID], countdown: float | None = None) -> bool:
    from config.celery_app import PUSH_SEND

    return not delivery_ids or _send(PUSH_SEND, [[str(i) for i in delivery_ids]], countdown)


def sms(delivery_ids: Sequence[uuid.UUID], countdown: float | None = None) -> bool:
    from config.celery_app import SMS_SEND

    return not delivery_ids or _send(SMS_SEND, [[str(i) for i in delivery_ids]], countdown)


def sms_poll(delivery_ids: Sequence[uuid.UUID]) -> bool:
    from config.celery_app import SMS_POLL

    return not delivery_ids or _send(SMS_POLL, [[str(i) for i in delivery_ids]])


def receipt_check(message_ids: Sequence[uuid.UUID], delay: float) -> bool:
    """Schedule the receipt check, unless it is further out than a countdown may safely be.

    Far deadlines are left to the maintenance sweep, which reads them from the database.
    """
    from config.celery_app import RECEIPTS_CHECK

    if not message_ids or delay > get_settings().max_countdown_seconds:
        return True
    return _send(RECEIPTS_CHECK, [[str(i) for i in message_ids]], max(delay, 0.0))
