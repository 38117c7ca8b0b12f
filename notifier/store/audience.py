"""Who a segment reaches: users walked in id order, in chunks, never the whole audience at once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from notifier.domain.segments import Segment
from notifier.store.models import Device, UserTag
from notifier.store.sql import among


def _devices_where(segment: Segment) -> list[Any]:
    """The conditions the database can check on a device row (versions are checked after)."""
    where: list[Any] = [Device.state == "active"]
    if segment.user_ids:
        where.append(Device.user_id.in_(segment.user_ids))
    if segment.platform:
        where.append(Device.platform == segment.platform)
    if segment.locale:
        where.append(func.lower(func.replace(Device.locale, "_", "-")).like(f"{segment.locale}%"))
    for tag in segment.tags:
        tagged = select(UserTag.user_id).where(
            UserTag.user_id == Device.user_id, UserTag.tag == tag
        )
        where.append(tagged.exists())
    return where


def count_users(session: Session, segment: Segment) -> int:
    stmt = select(func.count(func.distinct(Device.user_id))).where(*_devices_where(segment))
    return int(session.scalar(stmt) or 0)


def next_users(session: Session, segment: Segment, after: str | None, limit: int) -> list[str]:
    """The next `limit` users of the segment after `after`, in id order."""
    stmt = select(Device.user_id).where(*_devices_where(segment)).distinct()
    if after is not None:
        stmt = stmt.where(Device.user_id > after)
    return list(session.scalars(stmt.order_by(Device.user_id).limit(limit)))


def devices_of(session: Session, segment: Segment, users: Sequence[str]) -> dict[str, list[Device]]:
    """The segment's devices of these users, per user (versions checked here)."""
    stmt = select(Device).where(among(session, Device.user_id, users), *_devices_where(segment))
    found: dict[str, list[Device]] = defaultdict(list)
    for d in session.scalars(stmt.order_by(Device.user_id, Device.created_at)):
        if segment.admits(d.platform, d.locale, d.app_version):
            found[d.user_id].append(d)
    return found
