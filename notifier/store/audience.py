"""Who a segment reaches: users walked in id order, in chunks, never the whole audience at once."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, aliased

from notifier.domain.segments import Segment
from notifier.store.models import Device, UserTag


def devices_where(
    segment: Segment, after: str | None = None, last: str | None = None, first: str | None = None
) -> list[Any]:
    """The conditions the database can check on a device row (versions are checked after);
    with `after`, only users past it; with `first` / `last`, only users from / up to it."""
    where: list[Any] = [Device.state == "active"]
    where += _user_bounds(Device.user_id, after, first, last)
    if segment.user_ids:
        where.append(Device.user_id.in_(segment.user_ids))
    if segment.platform:
        where.append(Device.platform == segment.platform)
    if segment.locale:
        where.append(func.lower(func.replace(Device.locale, "_", "-")).like(f"{segment.locale}%"))
    for tag in segment.tags:
        tagged = select(UserTag.user_id).where(
            UserTag.user_id == Device.user_id,
            UserTag.tag == tag,
            # Said again on the tags' side: PostgreSQL carries the join's equality across but
            # not the bounds, so without them the merge join read the tag's index from its
            # first user on every chunk (a million-user walk cost 88 ms per chunk, half the
            # database's time in the broadcast, and grew with every chunk).
            *_user_bounds(UserTag.user_id, after, first, last),
        )
        where.append(tagged.exists())
    return where


def _user_bounds(
    column: Any, after: str | None, first: str | None, last: str | None
) -> list[ColumnElement[bool]]:
    bounds = []
    if after is not None:
        bounds.append(column > after)
    if first is not None:
        bounds.append(column >= first)
    if last is not None:
        bounds.append(column <= last)
    return bounds


def count_users(session: Session, segment: Segment) -> int:
    stmt = select(func.count(func.distinct(Device.user_id))).where(*devices_where(segment))
    return int(session.scalar(stmt) or 0)


def next_users(session: Session, segment: Segment, after: str | None, limit: int) -> list[str]:
    """The next `limit` users of the segment after `after`, in id order."""
    return list(session.scalars(next_users_query(segment, after, limit)))


def next_users_query(segment: Segment, after: str | None, limit: int) -> Select[str]:
    """A tag segment is walked by its first tag's index alone: the users of that tag past the
    cursor, in id order, whatever else the segment asks (the chunk's write reads their
    devices, and a user with none the segment reaches gets no message).

    Walked over devices joined to the tags, the chunk's next users were costed by two
    independent guesses: a tag that is one audience of several, walked past the others, was
    taken for 1,500 matches where 100,000 were, and the planner chose to read and sort all
    of them for each chunk (a parallel hash join: 229 ms a chunk instead of 7 ms at five
    audiences of 200,000, the database's cost per recipient growing with every audience
    before the walked one, until the statement's generic plan took over)."""
    if segment.tags and not segment.user_ids:
        return _tagged_users_query(segment.tags, after, limit)
    stmt = select(Device.user_id).where(*devices_where(segment, after)).distinct()
    return stmt.order_by(Device.user_id).limit(limit)


def _tagged_users_query(tags: tuple[str, ...], after: str | None, limit: int) -> Select[str]:
    first, *others = tags
    where = [UserTag.tag == first, *_user_bounds(UserTag.user_id, after, None, None)]
    for tag in others:
        also = aliased(UserTag)
        where.append(
            select(also.user_id).where(also.user_id == UserTag.user_id, also.tag == tag).exists()
        )
    return select(UserTag.user_id).where(*where).order_by(UserTag.user_id).limit(limit)


class Target(NamedTuple):
    """A device a broadcast goes to (read as a plain row: a chunk holds hundreds)."""

    id: uuid.UUID
    platform: str
    token: str


def devices_of(
    session: Session, segment: Segment, first: str, last: str
) -> dict[str, list[Target]]:
    """The segment's devices of the walk's next chunk, per user (versions checked here): the
    users from `first` up to `last`, the first and last of those next_users returned.

    Read by that range of user ids, not by the chunk's list of them: with 5,000 ids in an
    `= ANY` the planner read the whole devices and user_tags tables per chunk at 300,000
    recipients (a parallel hash join, ~80 ms a chunk); a range is costed from the index. The
    range starts at the chunk's first user, not past the cursor: the first chunk has no
    cursor, and read every user before the walked audience's first."""
    found: dict[str, list[Target]] = defaultdict(list)
    # Each row unpacked as the tuple it is: a Row's attribute reads cost ~2 µs a device.
    rows = session.execute(devices_query(segment, first, last))
    for device_id, platform, token, user_id, locale, app_version in rows:
        if segment.admits(platform, locale, app_version):
            found[user_id].append(Target(device_id, platform, token))
    return found


def devices_query(
    segment: Segment, first: str, last: str
) -> Select[uuid.UUID, str, str, str, str | None, str | None]:
    columns = (Device.id, Device.platform, Device.token, Device.user_id, Device.locale)
    where = devices_where(segment, first=first, last=last)
    stmt = select(*columns, Device.app_version).where(*where)
    return stmt.order_by(Device.user_id, Device.created_at)
