"""SMS-specific queries: frequency counters, opt-outs, deliveries waiting for a report."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from notifier.domain.frequency import PastSend
from notifier.store.db import is_postgres
from notifier.store.models import Delivery, SmsOptout, SmsSend
from notifier.store.repo import insert_rows, utcnow
from notifier.store.sql import in_states


def lock_numbers(session: Session, phones: Sequence[str]) -> None:
    """Serialise check-and-reserve per phone number across workers (until commit): one
    statement for a whole batch, the locks taken in the order of their keys, so two batches
    sharing numbers take turns instead of deadlocking.

    SQLite needs nothing: each transaction holds the database write lock from BEGIN IMMEDIATE.
    """
    if phones and is_postgres(session):
        session.execute(
            text(
                "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT"
                " hashtextextended(p, 0) AS k FROM unnest(CAST(:phones AS text[])) AS p"
                " ORDER BY k) AS keys"
            ),
            {"phones": list(phones)},
        )


@dataclass(frozen=True)
class Reserved:
    """A counted send of a number, and the delivery it was counted for."""

    send: PastSend
    delivery_id: uuid.UUID | None


def recent_sends(
    session: Session, phones: Sequence[str], since: datetime
) -> dict[str, list[Reserved]]:
    """The sends counted against each of these numbers since `since`."""
    found: dict[str, list[Reserved]] = {p: [] for p in phones}
    if phones:
        rows = session.execute(
            select(
                SmsSend.phone, SmsSend.signature, SmsSend.kind, SmsSend.created_at,
                SmsSend.delivery_id,
            ).where(SmsSend.phone.in_(set(phones)), SmsSend.created_at > since)
        )  # fmt: skip
        for phone, sig, kind, at, delivery_id in rows:
            found[phone].append(Reserved(PastSend(sig, kind, at), delivery_id))
    return found


def reserve_sends(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Count these SMS against their numbers' limits (phone, signature, template_code, kind,
    delivery_id), in one statement."""
    now = utcnow()
    insert_rows(session, SmsSend, [{"created_at": now, **r} for r in rows])


def release_sends(session: Session, delivery_ids: Sequence[uuid.UUID]) -> None:
    """Un-count SMS the carrier never took (carriers count only successful submits)."""
    if delivery_ids:
        session.execute(delete(SmsSend).where(SmsSend.delivery_id.in_(delivery_ids)))


def is_opted_out(session: Session, phone: str) -> bool:
    return phone in opted_out(session, [phone])


def opted_out(session: Session, phones: Sequence[str]) -> set[str]:
    """Which of these numbers opted out of promotional SMS."""
    if not phones:
        return set()
    return set(session.scalars(select(SmsOptout.phone).where(SmsOptout.phone.in_(set(phones)))))


def awaiting_report(session: Session, older_than: datetime, limit: int) -> list[uuid.UUID]:
    """Submitted SMS whose delivery report has not come by webhook for a while."""
    return list(
        session.scalars(
            select(Delivery.id)
            .where(
                Delivery.channel == "sms",
                in_states(Delivery.state, ["submitted"]),  # the partial index matches
                Delivery.updated_at < older_than,
            )
            .order_by(Delivery.updated_at)
            .limit(limit)
        )
    )
