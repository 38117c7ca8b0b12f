"""Operator figures over a recent window, read from the database: `notifier stats --since 1h`."""

from __future__ import annotations

import re
import statistics
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from notifier.domain import states
from notifier.domain.errors import InvalidInput
from notifier.store import repo
from notifier.store.db import transaction
from notifier.store.models import Delivery, Event, Message

WINDOW = re.compile(r"^(\d{1,5})([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
SUBMITTED = (states.SUBMITTED, states.DELIVERED, states.UNDELIVERED)
ACK_SAMPLE = 20_000


def parse_window(raw: str) -> timedelta:
    match = WINDOW.match(raw.strip())
    if not match:
        raise InvalidInput("--since", "a window like 30m, 1h or 7d")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def _by_channel(session: Session, start: datetime) -> dict[str, dict[str, int]]:
    rows = session.execute(
        select(Delivery.channel, Delivery.state, func.count())
        .where(Delivery.created_at >= start)
        .group_by(Delivery.channel, Delivery.state)
    ).all()
    out: dict[str, dict[str, int]] = {}
    for channel, state, n in rows:
        out.setdefault(channel, {})[state] = int(n)
    return out


def _rates(by_state: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
    rates: dict[str, dict[str, Any]] = {}
    for channel, counts in by_state.items():
        tried = sum(n for s, n in counts.items() if s not in (states.STANDBY, states.CANCELLED))
        reached = sum(n for s, n in counts.items() if s in states.REACHED)
        rates[channel] = {
            "deliveries": tried,
            "reached": reached,
            "reached_rate": round(reached / tried, 4) if tried else None,
            "states": counts,
        }
    return rates


def _fallback(session: Session, start: datetime) -> dict[str, Any]:
    supplement = select(Message.id).where(
        Message.created_at >= start, Message.policy == "supplement"
    )
    total = session.scalar(select(func.count()).select_from(supplement.subquery())) or 0
    fell_back = session.scalar(
        select(func.count(func.distinct(Event.message_id))).where(
            Event.created_at >= start, Event.kind == "fallback"
        )
    )
    return {
        "supplement_messages": int(total),
        "fell_back_to_sms": int(fell_back or 0),
        "fallback_rate": round(int(fell_back or 0) / total, 4) if total else None,
    }


def _time_to_ack(session: Session, start: datetime) -> float | None:
    rows = session.execute(
        select(Message.created_at, func.min(Event.created_at))
        .join(Event, Event.message_id == Message.id)
        .where(Message.created_at >= start, Event.kind.in_([states.ACKED, states.OPENED]))
        .group_by(Message.id, Message.created_at)
        .limit(ACK_SAMPLE)
    ).all()
    waits = [(acked - created).total_seconds() for created, acked in rows]
    return round(statistics.median(waits), 3) if waits else None


def _sms_by_template(session: Session, start: datetime) -> list[dict[str, Any]]:
    rows = session.execute(
        select(
            Message.sms_template,
            func.count(),
            func.coalesce(func.sum(Delivery.sms_parts), 0),
            func.coalesce(func.sum(Delivery.sms_cost), 0),
        )
        .join(Message, Message.id == Delivery.message_id)
        .where(
            Delivery.created_at >= start,
            Delivery.channel == states.SMS,
            Delivery.state.in_(SUBMITTED),
        )
        .group_by(Message.sms_template)
        .order_by(func.count().desc())
    ).all()
    return [
        {"template": t, "sms": int(n), "parts": int(p or 0), "cost": str(Decimal(str(c)))}
        for t, n, p, c in rows
    ]


def _top_errors(session: Session, start: datetime, limit: int = 10) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Delivery.channel, Delivery.error_code, func.count())
        .where(Delivery.created_at >= start, Delivery.error_code.is_not(None))
        .group_by(Delivery.channel, Delivery.error_code)
        .order_by(func.count().desc())
        .limit(limit)
    ).all()
    return [{"channel": ch, "error_code": code, "deliveries": int(n)} for ch, code, n in rows]


def stats(window: timedelta) -> dict[str, Any]:
    now = repo.utcnow()
    start = now - window
    seconds = window.total_seconds()
    with transaction() as session:
        messages = dict(
            session.execute(
                select(Message.state, func.count())
                .where(Message.created_at >= start)
                .group_by(Message.state)
            ).all()
        )
        channels = _rates(_by_channel(session, start))
        figures = {
            "since": start.isoformat(),
            "messages": {str(k): int(v) for k, v in messages.items()},
            "messages_per_second": round(sum(messages.values()) / seconds, 3),
            "channels": channels,
            "fallback": _fallback(session, start),
            "median_seconds_to_ack": _time_to_ack(session, start),
            "sms_by_template": _sms_by_template(session, start),
            "top_errors": _top_errors(session, start),
        }
    for channel in channels.values():
        channel["per_second"] = round(channel["deliveries"] / seconds, 3)
    return figures
