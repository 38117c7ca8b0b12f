"""Per-number SMS frequency limits: which window a new send would break, if any. No I/O.

Defaults follow common carrier flow control (Alibaba Cloud SMS): verification codes 1 per
minute, 5 per hour and 10 per 24 hours per number and signature, minute and hour windows
clock-aligned and the day rolling; other kinds 50 per rolling 24 hours per number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Limits:
    verification_minute: int = 1
    verification_hour: int = 5
    verification_day: int = 10
    other_day: int = 50


@dataclass(frozen=True)
class PastSend:
    signature: str
    kind: str
    at: datetime


def window_hit(
    kind: str, signature: str, now: datetime, recent: Sequence[PastSend], limits: Limits
) -> str | None:
    """The rule a send of `kind` under `signature` would break now, given the number's sends
    of the last 24 hours; None when it may go."""
    day_ago = now - timedelta(hours=24)
    if kind != "verification":
        count = sum(1 for s in recent if s.kind != "verification" and s.at > day_ago)
        if count >= limits.other_day:
            return f"{limits.other_day} per 24 hours per number"
        return None
    mine = [s.at for s in recent if s.kind == "verification" and s.signature == signature]
    minute = now.replace(second=0, microsecond=0)
    hour = minute.replace(minute=0)
    windows = (
        (limits.verification_minute, minute, "per minute"),
        (limits.verification_hour, hour, "per hour"),
        (limits.verification_day, day_ago, "per 24 hours"),
    )
    for limit, since, label in windows:
        if sum(1 for at in mine if at >= since) >= limit:
            return f"verification: {limit} {label} per number and signature"
    return None
