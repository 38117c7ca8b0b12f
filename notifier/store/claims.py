"""Claiming queued deliveries: the conditional move to `sending` that makes a batch one
worker's (counting the attempt), with the messages the send needs.

The push stage claims hundreds of deliveries per batch and reads them as plain rows
(`claim_pushes`): building and tracking ORM objects for them cost more CPU than the rest of
the claim. The SMS stage keeps ORM objects (`claim_queued`): it writes the composed text back
onto the claimed rows, and its batches are a fraction of the volume.
"""

from __future__ import annotations

import json
import typing
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    CTE,
    ColumnElement,
    Integer,
    Select,
    Table,
    Text,
    Update,
    bindparam,
    cast,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from notifier.store import direct
from notifier.store.db import is_postgres
from notifier.store.decision_rows import PlanRow, columns_of
from notifier.store.models import Delivery, Message
from notifier.store.repo import (
    deliveries_locked_in_id_order,
    load_messages,
    moving,
    utcnow,
)
from notifier.store.sql import among, among_param, prebuilt, uuid_array


@dataclass(frozen=True)
class TopUp:
    """Fill a claim up to `size` deliveries with other ready ones of `lane`."""

    lane: str
    size: int


@dataclass(slots=True, eq=False)
class PushDelivery:
    """What sending a push and recording its outcome read of a delivery."""

    id: uuid.UUID
    message_id: uuid.UUID
    channel: str
    platform: str | None
    target: str
    device_id: uuid.UUID | None
    attempts: int
    replays: int
    created_at: datetime


@dataclass(slots=True, eq=False)
class PushMessage(PlanRow):
    """What building a push and starting its receipt clock read of a message."""

    push_title: str | None
    push_body: str | None
    push_data: dict[str, Any]
    push_options: dict[str, Any]


_PUSH_DELIVERY = columns_of(PushDelivery, Delivery)
# The payload columns are read as text and decoded once per distinct text per claim: a
# broadcast's messages carry the same payload, which would be decoded once per row.
_PAYLOAD = ("push_data", "push_options")
_MESSAGE = columns_of(PushMessage, Message)
_PUSH_MESSAGE = tuple(cast(c, Text) if c.key in _PAYLOAD else c for c in _MESSAGE)


class _Payloads:
    """Decoded payloads of one claim by their text (shared between that claim's rows, which
    the push stage only reads)."""

    def __init__(self) -> None:
        self._seen: dict[str, Any] = {}

    def message(self, values: Sequence[Any]) -> PushMessage:
        message = PushMessage(*values)
        message.push_data = self._decoded(message.push_data)
        message.push_options = self._decoded(message.push_options)
        return message

    def _decoded(self, text: Any) -> Any:
        if not isinstance(text, str):
            return text
        if text not in self._seen:
            self._seen[text] = json.loads(text)
        return self._seen[text]


class _Claimed(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def created_at(self) -> datetime: ...


C = TypeVar("C", bound=_Claimed)


# Claims by a list of ids, or by a subquery of them (the top-up's ready rows).
Ids = Sequence[uuid.UUID] | Select[uuid.UUID]


def _claim_batch(
    session: Session,
    ids: Sequence[uuid.UUID],
    top_up: TopUp | None,
    claim: Callable[[Session, Ids], list[C]],
) -> list[C]:
    """With `top_up`, the claim also takes other ready deliveries of that lane, oldest first, up
    to `top_up.size` in all: when one-message tasks back up, the first task sends the backlog
    as one batch and the tasks of what it took find nothing left to claim. Each part is one
    statement: a transactional message's claim is on its latency path, and under load every
    round trip to the database waits its turn for a CPU."""
    claimed = claim(session, ids) if ids else []
    if top_up is not None and len(claimed) < top_up.size:
        claimed += claim(session, _ready(session, top_up.lane, top_up.size - len(claimed)))
    return _oldest_first(claimed)


def _oldest_first(claimed: list[C]) -> list[C]:
    """Oldest first, so per-number limits let the earlier messages through. (A chunk's rows
    share their created_at: ties compare the ids, as ints, cheaply.)"""
    claimed.sort(key=lambda d: (d.created_at, d.id.int))
    return claimed


_DELIVERIES = typing.cast(Table, Delivery.__table__)
_MESSAGES = typing.cast(Table, Message.__table__)


def _claiming_pushes_by_id(topped_up: bool) -> Update:
    """The push claim by ids on PostgreSQL, built once on the tables (a Core statement keeps
    its cache key; building and keying an ORM one cost ~0.5 ms of CPU per claim, most of a
    one-message transactional claim): moves the rows locked in id order that were queued to
    sending and returns them with their messages (UPDATE ... FROM messages).

    `topped_up`: the same statement also takes up to `room` other ready rows of `_lane`
    (`_ready_rows`), so a transactional claim is one round trip whether or not anything
    waits, and needs no look at the broker's queue first: under a broadcast each round trip
    of a one-time code's claim waits its turn for a CPU (the separate top-up was ~4.5 ms of
    a ~10 ms claim at the median in the bench)."""
    d, m = _DELIVERIES, _MESSAGES
    named = among_param(d.c.id, "ids", True)
    in_order = deliveries_locked_in_id_order(named)
    payload = [cast(m.c[c.key], Text) if c.key in _PAYLOAD else m.c[c.key] for c in _MESSAGE]
    if topped_up:
        # The named rows are locked first: the top-up leaves out the rows in `in_order`, so
        # it can only run once they are all locked. A claim never holds a stolen row while it
        # waits for a named one, and the top-up itself never waits (SKIP LOCKED): no lock-order
        # edge beyond the id order.
        besides = d.c.id.not_in(select(in_order.c.id))
        # Materialized: inlined, the UNION ALL broke PostgreSQL's recheck of rows another
        # transaction updated after this statement's snapshot (the sweep marking what it
        # re-published, as this claim waited for their locks). Of 50 such rows the UPDATE
        # took only the first; the rest stayed queued, to be re-published and lost that race
        # again, one row per sweep (the fault suite's crash scenario, ~1 row every 4 s).
        chosen = (
            union_all(
                select(in_order.c.id).where(in_order.c.state == "queued"),
                select(_ready_rows(besides).c.id),
            )
            .cte("chosen")
            .prefix_with("MATERIALIZED")
        )
        picked = d.c.id == chosen.c.id
    else:
        picked = (d.c.id == in_order.c.id) & (in_order.c.state == "queued")
    return (
        update(d)
        .where(picked)
        .where(d.c.message_id == m.c.id)
        .values(
            state="sending",
            updated_at=bindparam("_now", type_=d.c.updated_at.type),
            attempts=d.c.attempts + 1,
        )
        .returning(*(d.c[c.key] for c in _PUSH_DELIVERY), *payload)
    )


def _ready_rows(besides: ColumnElement[bool]) -> CTE:
    """`_ready` for a prebuilt statement (PostgreSQL), of the rows matching `besides`: up to
    `room` of `_lane`. Rows this transaction locked itself are not skipped, hence `besides`
    (not the named ones)."""
    d = _DELIVERIES
    lane = bindparam("_lane", type_=d.c.lane.type)
    now = bindparam("_now", type_=d.c.updated_at.type)
    ready = _ready_select(lane, bindparam("room", type_=Integer()), now).where(besides)
    return _skipping_locked(ready)


_CLAIM_PUSHES_BY_ID = prebuilt(lambda _postgres: _claiming_pushes_by_id(topped_up=False))
_CLAIM_PUSHES_TOPPED_UP = prebuilt(lambda _postgres: _claiming_pushes_by_id(topped_up=True))


def claim_queued(
    session: Session, ids: Sequence[uuid.UUID], top_up: TopUp | None = None
) -> tuple[list[Delivery], dict[uuid.UUID, Message]]:
    """Claim queued deliveries as ORM objects, with their messages (the SMS stage)."""
    claimed = _claim_batch(session, ids, top_up, _claim_objects)
    if not claimed:
        return [], {}  # a task whose deliveries another claim took: nothing more to read
    messages = load_messages(session, [d.message_id for d in claimed])
    return claimed, {m.id: m for m in messages}


def top_up_is_free(session: Session) -> bool:
    """Whether `claim_pushes` takes a top-up in its claiming statement (PostgreSQL), so that
    asking for one costs no round trip when nothing is ready."""
    return is_postgres(session)


def claim_pushes(
    session: Session, ids: Sequence[uuid.UUID], top_up: TopUp | None = None
) -> tuple[list[PushDelivery], dict[uuid.UUID, PushMessage]]:
    """Claim queued push deliveries as plain rows, with their messages. On PostgreSQL the
    claiming UPDATE returns the message columns too (UPDATE ... FROM messages): one statement
    where a second would read the messages (SQLite's RETURNING cannot name another table).
    It stays one statement there, top-up or not: the push stage runs it in autocommit
    (db.transaction(one_statement=True))."""
    messages: dict[uuid.UUID, PushMessage] = {}
    joined = is_postgres(session)
    payloads = _Payloads()

    def claim(s: Session, which: Ids) -> list[PushDelivery]:
        if not joined:
            stmt = _claiming(s, which).returning(*_PUSH_DELIVERY)
            return [PushDelivery(*row) for row in s.execute(stmt)]
        rows: Iterable[Sequence[Any]]
        if isinstance(which, Select):  # the top-up's ready rows
            stmt = (
                _claiming(s, which)
                .where(Delivery.message_id == Message.id)
                .returning(*_PUSH_DELIVERY, *_PUSH_MESSAGE)
            )
            rows = s.execute(stmt)
        elif top_up is not None:  # the named rows and the top-up in one statement
            params = {
                "ids": uuid_array(which),
                "_now": utcnow(),
                "_lane": top_up.lane,
                "room": max(0, top_up.size - len(which)),
            }
            rows = direct.rows(s, _CLAIM_PUSHES_TOPPED_UP(s), params)
        else:
            params = {"ids": uuid_array(which), "_now": utcnow()}
            rows = direct.rows(s, _CLAIM_PUSHES_BY_ID(s), params)
        claimed, split = [], len(_PUSH_DELIVERY)
        for row in rows:
            claimed.append(PushDelivery(*row[:split]))
            if row[split] not in messages:
                messages[row[split]] = payloads.message(row[split:])
        return claimed

    if joined and top_up is not None:
        claimed = _oldest_first(claim(session, ids))
    else:
        claimed = _claim_batch(session, ids, top_up, claim)
    if claimed and not joined:
        wanted = {d.message_id for d in claimed}
        stmt = select(*_PUSH_MESSAGE).where(among(session, Message.id, wanted))
        found = (payloads.message(row) for row in session.execute(stmt))
        messages = {m.id: m for m in found}
    return claimed, messages


def _claiming(session: Session, ids: Ids) -> Any:
    claiming = update(Delivery).values(
        state="sending", updated_at=utcnow(), attempts=Delivery.attempts + 1
    )
    if isinstance(ids, Select):
        # The top-up's ready rows come locked and queued as found (SKIP LOCKED leaves out
        # what other claims hold), so the table gets no state condition of its own either.
        stmt = claiming.where(Delivery.id.in_(ids))
    elif is_postgres(session):
        # Even for one row, as the push claim: its plan is then a primary-key lookup
        # whatever the statistics say about queued rows.
        in_order = deliveries_locked_in_id_order(among(session, _DELIVERIES.c.id, ids))
        stmt = claiming.where(Delivery.id == in_order.c.id, in_order.c.state == "queued")
    else:
        # SQLite serialises writers (BEGIN IMMEDIATE): no row locks, no order to keep.
        return moving(session, ids, "queued", "sending", attempts=Delivery.attempts + 1)
    return stmt.execution_options(synchronize_session=False)


def _claim_objects(session: Session, ids: Ids) -> list[Delivery]:
    stmt = _claiming(session, ids).returning(Delivery).execution_options(populate_existing=True)
    return list(session.scalars(stmt))


def _ready(session: Session, lane: str, limit: int) -> Select[uuid.UUID]:
    """Queued deliveries of a lane that may go now (a retry's or deferral's time has come),
    oldest first, locked, as a subquery for the claiming UPDATE. SKIP LOCKED: rows another
    claim holds are left to it, and this lookup never waits, so it adds no lock-order edge to
    the id-ordered locks taken before."""
    stmt = _ready_select(lane, limit, utcnow())
    if not is_postgres(session):
        return stmt
    # A materialized CTE runs once: as a plain IN (subquery) the planner may run it once
    # per candidate row, and its LIMIT would then bound each run instead of the claim.
    return select(_skipping_locked(stmt).c.id)


def _ready_select(lane: Any, limit: Any, now: Any) -> Select[uuid.UUID]:
    d = _DELIVERIES
    return (
        select(d.c.id)
        .where(
            d.c.lane == lane,
            # A literal, so the planner matches the partial index under a generic plan too.
            d.c.state == literal_column("'queued'"),
            or_(d.c.next_attempt_at.is_(None), d.c.next_attempt_at <= now),
        )
        .order_by(d.c.created_at)
        .limit(limit)
    )


def _skipping_locked(ready: Select[uuid.UUID]) -> CTE:
    locking = ready.with_for_update(key_share=True, skip_locked=True)
    return locking.cte("ready").prefix_with("MATERIALIZED")
