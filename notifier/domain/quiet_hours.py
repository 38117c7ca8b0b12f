"""Quiet hours in the recipient's own time zone, taken from the number's country."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_timezones

from notifier.domain.errors import InvalidInput


def parse_window(raw: str) -> tuple[time, time]:
    """'21:00-08:00' → (21:00, 08:00); the window may wrap past midnight."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in raw.split("-"))
    except ValueError:
        raise InvalidInput("sms_quiet_hours", "must look like 21:00-08:00") from None
    return start, end


def recipient_zone(phone: str) -> ZoneInfo:
    zones = number_timezones.time_zones_for_number(phonenumbers.parse(phone, None))
    for name in zones:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def quiet_until(phone: str, now: datetime, window: tuple[time, time]) -> datetime | None:
    """When the quiet window ends if `now` falls inside it for this recipient, else None."""
    start, end = window
    if start == end:
        return None
    local = now.astimezone(recipient_zone(phone))
    t = local.time()
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    end_day = local.date() + timedelta(days=1) if start > end and t >= start else local.date()
    return datetime.combine(end_day, end, tzinfo=local.tzinfo).astimezone(now.tzinfo)
