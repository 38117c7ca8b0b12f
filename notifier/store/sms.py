"""SMS-specific queries: frequency counters, opt-outs, deliveries waiting for a report."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from notifier.domain.frequency import PastSend
from notifier.store.db import is_postgres
from notifier.store.models import Delivery, SmsOptout, SmsSend
from notifier.store.repo import utcnow


def lock_number(session: Session, phone: str) -> None:
    """Serialise check-and-reserve per phone number across workers (until commit).

    SQLite needs nothing: each transaction holds the database write lock from BEGIN IMMEDIATE.
    """
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:p, 0))"), {"p": phone})


def recent_sends(session: Session, phone: str, since: datetime) -> list[PastSend]:
    rows = session.execute(
        select(SmsSend.signature, SmsSend.kind, SmsSend.created_at).where(
            SmsSend.phone == phone, SmsSend.created_at > since
        )
    )
    return [PastSend(sig, kind, at) for sig, kind, at in rows]


def reserve_send(
    session: Session, phone: str, signature: str, template: str, kind: str, delivery_id: uuid.UUID
) -> None:
    """Count this SMS against the number's limits; a retry of the same delivery counts once."""
    exists = session.scalar(select(func.count()).where(SmsSend.delivery_id == delivery_id))
    if not exists:
        session.add(
            SmsSend(
                phone=phone,
                signature=signature,
                template_code=template,
                kind=kind,
                delivery_id=delivery_id,
                created_at=utcnow(),
            )
        )
        session.flush()


def release_sends(session: Session, delivery_ids: Sequence[uuid.UUID]) -> None:
    """Un-count SMS the carrier never took (carriers count only successful submits)."""
    if delivery_ids:
        session.execute(delete(SmsSend).where(SmsSend.delivery_id.in_(delivery_ids)))


def is_opted_out(session: Session, phone: str) -> bool:
    return session.get(SmsOptout, phone) is not None


def awaiting_report(session: Session, older_than: datetime, limit: int) -> list[uuid.UUID]:
    """Submitted SMS whose delivery report has not come by webhook for a while."""
    return list(
        session.scalars(
            select(Delivery.id)
            .where(
                Delivery.channel == "sms",
                Delivery.state == "submitted",
                Delivery.updated_at < older_than,
            )
            .order_by(Delivery.updated_at)
            .limit(limit)
        )
    )
