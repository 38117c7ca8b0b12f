"""Repository functions: every read and write the pipeline does, one place per query."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import (
    CTE,
    ColumnElement,
    Select,
    Table,
    TextClause,
    Update,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import ScalarSelect

from notifier.domain.states import ACCEPTED, DELIVERY_FINAL
from notifier.store import bulk, direct
from notifier.store.db import is_postgres
from notifier.store.ids import new_id
from notifier.store.models import (
    Attempt,
    Delivery,
    Device,
    Event,
    Message,
    SmsSignature,
    SmsTemplate,
    User,
    UserTag,
)
from notifier.store.sql import (
    MESSAGE_STATES,
    among,
    among_param,
    ids_value,
    in_states,
    prebuilt,
    text_array,
    uuid_array,
)
from notifier.store.together import insert_together


def utcnow() -> datetime:
    return datetime.now(UTC)


class EventRow(NamedTuple):
    """One timeline entry to write (a tuple: an ack batch makes two per receipt)."""

    message_id: uuid.UUID
    kind: str
    detail: str | None = None
    delivery_id: uuid.UUID | None = None


def insert_rows(session: Session, model: type[Any], rows: Sequence[Mapping[str, Any]]) -> None:
    """insert_values for rows given as dicts, every one with the same keys."""
    if rows:
        names = list(rows[0])
        insert_values(session, model, names, [[row[n] for n in names] for row in rows])


def insert_values(
    session: Session, model: type[Any], names: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert many rows, given as values in `names` order, through the table, not the ORM: no
    per-row object bookkeeping, and on PostgreSQL one COPY per batch (what the fan-out and
    outcome records write by the hundred)."""
    table = cast(Table, model.__table__)
    if len(rows) >= bulk.COPY_FROM_ROWS and is_postgres(session):
        bulk.copy_values(session, table, names, rows)
    elif rows:
        session.execute(insert(table), [dict(zip(names, row, strict=True)) for row in rows])


_ATTEMPTS = cast(Table, Attempt.__table__)
_EVENTS = cast(Table, Event.__table__)


_EVENT_NAMES = ("message_id", "delivery_id", "kind", "detail", "created_at")


def _event_tuples(rows: Iterable[EventRow], at: datetime) -> list[tuple[Any, ...]]:
    """Event rows as values in _EVENT_NAMES order."""
    return [(r.message_id, r.delivery_id, r.kind, r.detail, at) for r in rows]


def add_events(session: Session, rows: Iterable[EventRow], at: datetime | None = None) -> None:
    insert_values(session, Event, _EVENT_NAMES, _event_tuples(rows, at or utcnow()))


def event_values(rows: Iterable[EventRow], at: datetime) -> list[dict[str, Any]]:
    """Event rows as dicts, for the few-row statement (together.insert_together)."""
    return [dict(zip(_EVENT_NAMES, values, strict=True)) for values in _event_tuples(rows, at)]


class AttemptRow(NamedTuple):
    """One provider answer to write (a tuple: a push batch makes one per delivery)."""

    delivery_id: uuid.UUID
    number: int
    outcome: str
    status_code: int | None
    error_code: str | None
    detail: str | None
    provider_ref: str | None


_ATTEMPT_NAMES = (*AttemptRow._fields, "created_at")


def add_attempts(session: Session, rows: Sequence[AttemptRow], at: datetime) -> None:
    insert_values(session, Attempt, _ATTEMPT_NAMES, [(*r, at) for r in rows])


def attempt_values(rows: Sequence[AttemptRow], at: datetime) -> list[dict[str, Any]]:
    """Attempt rows as dicts, for the few-row statement (together.insert_together)."""
    return [dict(zip(_ATTEMPT_NAMES, (*r, at), strict=True)) for r in rows]


def add_attempts_and_events(
    session: Session,
    attempts: Sequence[AttemptRow],
    events: Sequence[EventRow],
    at: datetime,
) -> None:
    """An outcome record's history rows. A transactional task's few go in one statement on
    PostgreSQL (together.py: it is one round trip fewer on a worker a one-time code may be
    waiting for); a batch's hundreds go by COPY, one per table."""
    few = max(len(attempts), len(events)) < bulk.COPY_FROM_ROWS
    if not (few and is_postgres(session)):
        add_attempts(session, attempts, at)
        add_events(session, events, at)
        return
    writes = [(_ATTEMPTS, attempt_values(attempts, at)), (_EVENTS, event_values(events, at))]
    insert_together(session, writes)


# --- users and devices -------------------------------------------------------------------


def upsert_user(session: Session, user_id: str, phone: str | None) -> User:
    now = utcnow()
    user = session.get(User, user_id, with_for_update=is_postgres(session))
    if user is None:
        user = User(id=user_id, phone=phone, created_at=now, updated_at=now)
        session.add(user)
    elif phone and phone != user.phone:
        user.phone = phone
        user.updated_at = now
    session.flush()
    return user


@dataclass(frozen=True)
class Binding:
    device: Device
    is_new: bool  # new to this user (a new token, a moved token, or a revived one)
    previous_user: str | None  # the user the token was bound to until now, if another


def bind_device(
    session: Session,
    user_id: str,
    platform: str,
    token: str,
    attributes: Mapping[str, str | None] | None = None,
) -> Binding:
    """Bind (or rebind) a token to a user; `attributes`: app_version and locale, when known."""
    now = utcnow()
    known = {k: v for k, v in (attributes or {}).items() if v is not None}
    device = session.scalars(
        select(Device).where(Device.platform == platform, Device.token == token)
    ).one_or_none()
    if device is None:
        device = Device(
            id=new_id(),
            user_id=user_id,
            platform=platform,
            token=token,
            state="active",
            bound_at=now,
            created_at=now,
            updated_at=now,
            **known,
        )
        session.add(device)
        session.flush()
        return Binding(device, True, None)
    for name, value in known.items():
        setattr(device, name, value)  # an app update reports its new version
    previous = device.user_id if device.user_id != user_id else None
    if previous is None and device.state in ("active", "held"):
        return Binding(device, False, None)  # the app re-registering its token: nothing new
    device.user_id, device.state, device.invalid_reason = user_id, "active", None
    device.bound_at = device.updated_at = now
    session.flush()
    return Binding(device, True, previous)


def set_tags(session: Session, user_id: str, tags: Sequence[str]) -> None:
    """Replace a user's tags."""
    session.execute(delete(UserTag).where(UserTag.user_id == user_id))
    if tags:
        session.execute(insert(UserTag), [{"user_id": user_id, "tag": t} for t in tags])


def release_held_devices(session: Session, device_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Held devices become active (their security notice went out, or could not)."""
    if not device_ids:
        return []
    stmt = (
        update(Device)
        .where(among(session, Device.id, device_ids), Device.state == "held")
        .values(state="active", updated_at=utcnow())
        .returning(Device.id)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(stmt))


def active_devices(session: Session, user_id: str) -> list[Device]:
    return list(
        session.scalars(
            select(Device)
            .where(Device.user_id == user_id, Device.state == "active")
            .order_by(Device.created_at)
        )
    )


def user_with_active_devices(session: Session, user_id: str) -> tuple[User | None, list[Device]]:
    """A user and their active devices (oldest first) in one round trip: a send reads both,
    on a one-time code's latency path."""
    active = and_(Device.user_id == User.id, Device.state == "active")
    rows = session.execute(
        select(User, Device)
        .outerjoin(Device, active)
        .where(User.id == user_id)
        .order_by(Device.created_at)
    ).all()
    if not rows:
        return None, []
    return rows[0][0], [device for _, device in rows if device is not None]


def invalidate_devices(session: Session, reasons: Mapping[uuid.UUID, str]) -> None:
    now = utcnow()
    for device_id, reason in reasons.items():
        session.execute(
            update(Device)
            .where(Device.id == device_id, Device.state == "active")
            .values(state="invalid", invalid_reason=reason, updated_at=now)
        )


# --- SMS catalogue -----------------------------------------------------------------------


def get_template(session: Session, code: str) -> SmsTemplate | None:
    return session.get(SmsTemplate, code)


def get_signature(session: Session, name: str) -> SmsSignature | None:
    return session.get(SmsSignature, name)


# --- messages and deliveries -------------------------------------------------------------


def find_message_by_key(session: Session, key: str) -> Message | None:
    return session.scalars(select(Message).where(Message.idempotency_key == key)).one_or_none()


S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def locked(session: Session, stmt: S) -> S:
    """The one row-lock mode for every writer (PostgreSQL; SQLite serialises writers with
    BEGIN IMMEDIATE). FOR NO KEY UPDATE still makes writers take turns, but lets other
    transactions insert rows that reference the row: a delivery's foreign-key check takes
    KEY SHARE, which FOR UPDATE would block (the deadlock the 2,000-message fault suite found,
    when events and attempts still had such checks too). Rows are locked in the statement's
    ORDER BY order, so callers order by id."""
    return locked_on(is_postgres(session), stmt)


def locked_on(postgres: bool, stmt: S) -> S:
    """`locked` for a statement built once per kind of database (sql.prebuilt)."""
    return stmt.with_for_update(key_share=True) if postgres else stmt


def deliveries_locked_in_id_order(named: ColumnElement[bool]) -> CTE:
    """The named deliveries with their states, locked in id order (lock_deliveries) by a
    materialized CTE `in_order` in the writing statement itself (PostgreSQL).

    A writer then checks the state each row was locked in, not a state condition on the
    table: with one, a planner whose statistics predated a broadcast or a backlog (almost no
    queued rows) went through every queued row by a partial index to find the few named
    (claims: 13,000-20,000 of them in the bench, 24 ms instead of 6.5 ms per claim of 500)."""
    d = cast(Table, Delivery.__table__)
    ordered = select(d.c.id, d.c.state).where(named).order_by(d.c.id)
    return locked_on(True, ordered).cte("in_order").prefix_with("MATERIALIZED")


def lock_deliveries(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Lock these delivery rows (FOR NO KEY UPDATE), always in id order (PostgreSQL), and
    return their states as of the lock.

    Claims, outcome records, acks, reports and advances all update several deliveries in one
    transaction; taking the row locks up front in one global order is what keeps two of them
    from deadlocking (found by the fault suite at 2,000 messages: a record transaction and an
    ack batch locked the same rows in opposite orders, and the record was rolled back after
    the pushes had gone out). SQLite needs no row lock: BEGIN IMMEDIATE serialises writers.
    """
    wanted = set(ids)  # the ORDER BY sets the lock order
    if not wanted:
        return {}
    stmt = (
        select(Delivery.id, Delivery.state)
        .where(among(session, Delivery.id, wanted))
        .order_by(Delivery.id)
    )
    return {row.id: row.state for row in session.execute(locked(session, stmt))}


def deliveries_of(session: Session, message_ids: Sequence[uuid.UUID]) -> list[Delivery]:
    return list(
        session.scalars(
            select(Delivery)
            .where(among(session, Delivery.message_id, message_ids))
            .order_by(Delivery.message_id, Delivery.created_at, Delivery.id)
        )
    )


def load_deliveries(session: Session, ids: Sequence[uuid.UUID]) -> list[Delivery]:
    """Oldest first, so per-number limits let the earlier messages through."""
    stmt = (
        select(Delivery)
        .where(among(session, Delivery.id, ids))
        .order_by(Delivery.created_at, Delivery.id)
    )
    return list(session.scalars(stmt))


def moving(
    session: Session,
    ids: Sequence[uuid.UUID] | Select[uuid.UUID],
    expected: str | Sequence[str],
    new_state: str,
    **values: Any,
) -> Update:
    """The conditional update every delivery transition is: only rows still in `expected`.
    `ids` may be a subquery of delivery ids."""
    states = [expected] if isinstance(expected, str) else list(expected)
    return (
        update(Delivery)
        .where(among(session, Delivery.id, ids), among(session, Delivery.state, states))
        .values(state=new_state, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )


def _moving_prebuilt(postgres: bool, returning: tuple[str, ...]) -> Update:
    """`moving` without extra values, built once: what acks and decisions run per batch.

    Built on the table, not the mapped class: SQLAlchemy annotates an ORM-enabled UPDATE
    anew on every execution, so its cache key (~0.4 ms for this statement) was computed
    again each time; a Core statement keeps the memoized one.

    On PostgreSQL the expected state is checked on the rows as locked
    (deliveries_locked_in_id_order): on the table, withdrawing a few queued pushes read the
    partial index of every queued row, a whole audience while a broadcast is being sent
    (test_batch_plans)."""
    t = cast(Table, Delivery.__table__)
    if postgres:
        in_order = deliveries_locked_in_id_order(among_param(t.c.id, "ids", True))
        picked = (t.c.id == in_order.c.id) & among_param(in_order.c.state, "expected", True)
    else:
        picked = among_param(t.c.id, "ids", False) & among_param(t.c.state, "expected", False)
    return (
        update(t)
        .where(picked)
        .values(
            state=bindparam("_new", type_=t.c.state.type),
            updated_at=bindparam("_now", type_=t.c.updated_at.type),
        )
        .returning(*(t.c[name] for name in returning))
    )


_MOVING = prebuilt(lambda pg: _moving_prebuilt(pg, ("id",)))
_MOVING_OF_MESSAGES = prebuilt(lambda pg: _moving_prebuilt(pg, ("id", "message_id")))


def _moving_params(
    session: Session, ids: Sequence[uuid.UUID], expected: str | Sequence[str], new_state: str
) -> dict[str, Any]:
    states = [expected] if isinstance(expected, str) else list(expected)
    return {"ids": ids_value(session, ids), "expected": states, "_new": new_state, "_now": utcnow()}


def transition_of_messages(
    session: Session, ids: Sequence[uuid.UUID], expected: Sequence[str], new_state: str
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """As transition, returning (delivery id, message id) of the rows that moved."""
    if not ids:
        return []
    params = _moving_params(session, ids, expected, new_state)
    return [(row[0], row[1]) for row in direct.rows(session, _MOVING_OF_MESSAGES(session), params)]


def transition(
    session: Session,
    ids: Sequence[uuid.UUID],
    expected: str | Sequence[str],
    new_state: str,
    **values: Any,
) -> list[uuid.UUID]:
    """Move deliveries from an expected state to a new one; returns the ids that moved.

    This is the claim: a second worker running the same task gets an empty list back.
    """
    if not ids:
        return []
    if not values:
        params = _moving_params(session, ids, expected, new_state)
        return [row[0] for row in direct.rows(session, _MOVING(session), params)]
    stmt = moving(session, ids, expected, new_state, **values).returning(Delivery.id)
    return list(session.scalars(stmt))


# One statement for a whole batch on PostgreSQL: the values travel as arrays and join the
# table, instead of an executemany of one UPDATE per row (client- and server-side per row).
# The rows are locked in id order as every writer locks them (lock_deliveries), and only those
# still `sending` as locked are written: an ack or a report may have moved one on first.
# The array rows drive the lock (each finds its row by primary key) and the CTE carries their
# values to the UPDATE: joined a third time instead, a generic plan (the planner guesses 10
# rows for an unnest of a parameter) rescanned the unnest once per row, 250,000 comparisons
# for a batch of 500 (~40-90 ms of database CPU per batch).
_SET_OUTCOMES_PG = text(
    "WITH in_order AS MATERIALIZED (SELECT d.id, d.state AS was, v.state, v.error_code,"
    " v.error_detail, v.provider_ref, v.next_attempt_at"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:states AS text[]), CAST(:codes AS text[]),"
    " CAST(:details AS text[]), CAST(:refs AS text[]), CAST(:nexts AS timestamptz[]))"
    " AS v(id, state, error_code, error_detail, provider_ref, next_attempt_at)"
    " JOIN deliveries AS d ON d.id = v.id ORDER BY d.id FOR NO KEY UPDATE OF d)"
    " UPDATE deliveries AS d SET state = o.state, updated_at = :now,"
    " error_code = o.error_code, error_detail = o.error_detail,"
    " provider_ref = coalesce(o.provider_ref, d.provider_ref),"
    " next_attempt_at = coalesce(o.next_attempt_at, d.next_attempt_at)"
    " FROM in_order AS o WHERE d.id = o.id AND o.was = 'sending'"
    " RETURNING d.id"
)


def _each_by_id(t: Table) -> Update:
    """An UPDATE of one row by id, for executemany: each row's id travels as `_id`."""
    return update(t).where(t.c.id == bindparam("_id", type_=t.c.id.type))


_OUTCOME_TEXTS = ("state", "error_code", "error_detail", "provider_ref")


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def set_outcomes(session: Session, rows: Sequence[Mapping[str, Any]]) -> set[uuid.UUID]:
    """Write recorded outcomes to claimed deliveries still `sending`, in one statement, not
    one per delivery; returns the ids written (the others an ack or a report moved on first).
    Each row: id, state, error_code, error_detail, and provider_ref / next_attempt_at (None
    keeps the stored value). On PostgreSQL the lock, the check and the write are one round
    trip, on a push batch's path and a transactional worker's."""
    if not rows:
        return set()
    now = utcnow()
    if is_postgres(session):
        arrays = [
            uuid_array([r["id"] for r in rows]),
            *(text_array([r[c] for r in rows]) for c in _OUTCOME_TEXTS),
            text_array([_iso(r["next_attempt_at"]) for r in rows]),
        ]
        keys = ("ids", "states", "codes", "details", "refs", "nexts")
        params = {"now": now, **dict(zip(keys, arrays, strict=True))}
        return {row[0] for row in direct.rows(session, _SET_OUTCOMES_PG, params)}
    current = lock_deliveries(session, [r["id"] for r in rows])
    rows = [r for r in rows if current.get(r["id"]) == "sending"]
    if not rows:
        return set()
    t = cast(Table, Delivery.__table__)
    stmt = _each_by_id(t).values(
        state=bindparam("_state", type_=t.c.state.type),
        updated_at=bindparam("_now", type_=t.c.updated_at.type),
        error_code=bindparam("_error_code", type_=t.c.error_code.type),
        error_detail=bindparam("_error_detail", type_=t.c.error_detail.type),
        provider_ref=func.coalesce(
            bindparam("_provider_ref", type_=t.c.provider_ref.type), t.c.provider_ref
        ),
        next_attempt_at=func.coalesce(
            bindparam("_next_attempt_at", type_=t.c.next_attempt_at.type),
            t.c.next_attempt_at,
        ),
    )
    session.execute(stmt, [{"_now": now, **{f"_{k}": v for k, v in r.items()}} for r in rows])
    return {r["id"] for r in rows}


def load_messages(session: Session, ids: Sequence[uuid.UUID]) -> list[Message]:
    """Messages as ORM objects, unlocked, in id order (a decision locks and reads its
    messages as decision_rows instead)."""
    stmt = select(Message).where(among(session, Message.id, ids)).order_by(Message.id)
    return list(session.scalars(stmt))


def lock_message_rows(session: Session, ids: Sequence[uuid.UUID]) -> None:
    """Lock messages as decision_rows.lock_messages does (same mode, same order) without
    reading them: for writers that change a column or two and need no decision. SQLite needs
    no row lock: every transaction there starts with BEGIN IMMEDIATE."""
    if ids and is_postgres(session):
        stmt = select(Message.id).where(among(session, Message.id, ids)).order_by(Message.id)
        session.execute(locked(session, stmt)).all()


def start_clocks(session: Session, dues: Mapping[uuid.UUID, datetime]) -> None:
    """Set the receipt deadline of messages whose step waits for its first send to start the
    clock (a broadcast's: fan-out writes far faster than pushes go out). The first send sets
    it; later ones keep it. Messages are locked first, as every writer does, in id order."""
    if not dues:
        return
    ids = list(dues)  # lock_message_rows orders the locks
    if is_postgres(session):
        # One statement per distinct deadline (a broadcast batch's share one), each locking
        # its rows in id order as it goes; with several, all are locked up front so that the
        # whole set is still locked in one id order.
        by_due: dict[datetime, list[uuid.UUID]] = defaultdict(list)
        for message_id, due in dues.items():
            by_due[due].append(message_id)
        if len(by_due) > 1:
            lock_message_rows(session, ids)
        for due, of_due in by_due.items():
            direct.rows(session, _START_CLOCKS_PG, {"ids": uuid_array(of_due), "due": due})
        return
    t = cast(Table, Message.__table__)
    stmt = (
        _each_by_id(t)
        .where(t.c.receipt_due_at.is_(None))
        .values(receipt_due_at=bindparam("_due", type_=t.c.receipt_due_at.type))
    )
    session.execute(stmt, [{"_id": i, "_due": dues[i]} for i in ids])


def set_steps(
    session: Session, steps: Mapping[uuid.UUID, tuple[int, datetime | None]], now: datetime
) -> None:
    """Move locked messages to their next step: `steps` maps id to (step, receipt deadline)."""
    if not steps:
        return
    t = cast(Table, Message.__table__)
    stmt = _each_by_id(t).values(
        step=bindparam("_step", type_=t.c.step.type),
        receipt_due_at=bindparam("_due", type_=t.c.receipt_due_at.type),
        updated_at=now,
    )
    rows = [{"_id": i, "_step": step, "_due": due} for i, (step, due) in steps.items()]
    session.execute(stmt, rows)


def _after_locking_messages(columns: str, statement: str) -> TextClause:
    """`statement` preceded by a CTE `locked` that locks the messages named by :ids in id
    order (as every writer of messages locks them) and reads `columns` of each as locked."""
    return text(
        f"WITH locked AS MATERIALIZED (SELECT {columns} FROM messages"
        " WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR NO KEY UPDATE) " + statement
    )


# On PostgreSQL what a message must still be is checked on the row as locked, never in the
# UPDATE's WHERE, so that the target is found by primary key whatever the statistics say:
# - a generic plan that guessed `state = 'accepted'` rare (15 rows) combined the state index
#   with the primary key, and read the whole broadcast's accepted messages from
#   ix_messages_state_created for every ack batch (20,000 entries per batch of 90);
# - statistics taken while every message had its clock (autovacuum between broadcasts) made
#   `receipt_due_at IS NULL` look like one row: the planner then scanned the whole table once
#   per message of a push batch (2.4-3.1 s a statement, 0.4-0.85 ms of database CPU per
#   delivery, at 24,000 messages). A CTE's column has no statistics, so the check on
#   `locked` costs the same guess whatever the table holds.
_START_CLOCKS_PG = _after_locking_messages(
    "id, receipt_due_at",
    "UPDATE messages AS m SET receipt_due_at = :due"
    " FROM locked WHERE m.id = locked.id AND locked.receipt_due_at IS NULL",
).bindparams(bindparam("due", type_=Message.receipt_due_at.type))


_FINISH_MESSAGES_PG = _after_locking_messages(
    "id, state",
    "UPDATE messages AS m SET state = :_state, updated_at = :_now, completed_at = :_now"
    " FROM locked WHERE m.id = locked.id AND locked.state = :_from RETURNING m.id",
).bindparams(bindparam("_now", type_=Message.updated_at.type))


def _finishing(postgres: bool) -> Update | TextClause:
    if postgres:
        return _FINISH_MESSAGES_PG
    t = cast(Table, Message.__table__)  # a Core statement, as _moving_prebuilt says why
    return (
        update(t)
        .where(among_param(t.c.id, "ids", postgres))
        .where(t.c.state == bindparam("_from", type_=t.c.state.type))
        .values(
            state=bindparam("_state", type_=t.c.state.type),
            updated_at=bindparam("_now", type_=t.c.updated_at.type),
            completed_at=bindparam("_now", type_=t.c.completed_at.type),
        )
        .returning(t.c.id)
    )


_FINISH_MESSAGES = prebuilt(_finishing)


def finish_messages(
    session: Session, message_ids: Sequence[uuid.UUID], state: str, from_state: str = "accepted"
) -> list[uuid.UUID]:
    """Move messages (accepted, unless told) to a final state; returns the ids that moved."""
    if not message_ids:
        return []
    params = {
        "ids": ids_value(session, message_ids),
        "_from": from_state,
        "_state": state,
        "_now": utcnow(),
    }
    return [row[0] for row in direct.rows(session, _FINISH_MESSAGES(session), params)]


def _a_delivery_of_the_message(condition: ColumnElement[bool]) -> ScalarSelect[uuid.UUID]:
    """One of the outer message's deliveries meeting `condition`, NULL when none does: one
    index probe per message. As an EXISTS the planner may turn the check into a join or a
    hashed subplan that starts from the deliveries and reads all of them that meet the
    condition, which statistics can make look few; a scalar subquery with LIMIT 1 stays a
    probe per message."""
    found = select(Delivery.id).where(Delivery.message_id == Message.id, condition)
    return found.limit(1).scalar_subquery()


def overdue_messages(session: Session, now: datetime, limit: int) -> list[uuid.UUID]:
    """Messages past their receipt deadline that still hold something the deadline decides:
    a push sent but not acknowledged, or an SMS held in standby."""
    # With an EXISTS, statistics that thought nothing sent (taken while a broadcast's pushes
    # were queued) read every delivery of the table per check, ~100 ms every 0.1 s slot at
    # 300,000 recipients.
    waiting = _a_delivery_of_the_message(Delivery.state.in_(["sent", "standby"]))
    return list(
        session.scalars(
            select(Message.id)
            # A literal state, so that a generic plan still matches the partial index.
            .where(Message.state == literal_column("'accepted'"), Message.receipt_due_at < now)
            .where(waiting.is_not(None))
            .order_by(Message.receipt_due_at)
            .limit(limit)
        )
    )


# Where a walk over the accepted messages stands: the last (created_at, id) it looked at.
Position = tuple[datetime, uuid.UUID]


def unfinished_messages(
    session: Session, older_than: datetime, limit: int, after: Position | None, scan: int
) -> tuple[list[uuid.UUID], Position | None]:
    """Accepted messages whose deliveries all ended, yet the message was never finished: the
    advance after the last change was lost (database away at that moment, a worker killed).

    A walk in (created_at, id) order that looks at `scan` messages at most, from just after
    `after`; returns up to `limit` of them and where the next call goes on (None: the walk
    reached `older_than` and starts over). Bounded because a broadcast keeps up to a million
    messages accepted for minutes, every one of them with an open delivery: one lookup of
    them all cost the database ~300 ms a sweep to find none."""
    # With an EXISTS, statistics that made open deliveries look rare hashed all of them once
    # per sweep (~240 ms a sweep at 300,000 recipients, growing with them).
    open_delivery = _a_delivery_of_the_message(Delivery.state.not_in(list(DELIVERY_FINAL)))
    stmt = (
        select(Message.created_at, Message.id, open_delivery.is_(None))
        # The state written out: the partial index matches a generic plan too.
        .where(in_states(Message.state, [ACCEPTED], MESSAGE_STATES))
        .where(Message.created_at < older_than)
        .order_by(Message.created_at, Message.id)
        .limit(scan)
    )
    if after is not None:
        stmt = stmt.where(tuple_(Message.created_at, Message.id) > tuple_(*after))
    rows = session.execute(stmt).all()
    ended = [i for i, row in enumerate(rows) if row[2]][:limit]
    if len(ended) == limit:  # stop at the last one taken: the rest of the page comes next
        last = rows[ended[-1]]
        return [rows[i][1] for i in ended], (last[0], last[1])
    more = (rows[-1][0], rows[-1][1]) if len(rows) == scan else None
    return [rows[i][1] for i in ended], more


def touch(session: Session, ids: Sequence[uuid.UUID], state: str | None = None) -> None:
    """Mark deliveries as just looked at (re-published, polled), so the sweep leaves them be
    for another interval; with `state`, only those still in it."""
    if ids:
        lock_deliveries(session, ids)
        stmt = update(Delivery).where(among(session, Delivery.id, ids))
        if state is not None:
            stmt = stmt.where(Delivery.state == state)
        session.execute(
            stmt.values(updated_at=utcnow()).execution_options(synchronize_session=False)
        )


def sms_by_provider_ref(session: Session, ref: str) -> Delivery | None:
    """The SMS delivery a carrier knows by `ref` (its message id, in a delivery report)."""
    stmt = select(Delivery).where(Delivery.channel == "sms", Delivery.provider_ref == ref)
    return session.scalars(stmt).first()


def timeline(session: Session, message_id: uuid.UUID) -> list[Event]:
    return list(
        session.scalars(select(Event).where(Event.message_id == message_id).order_by(Event.id))
    )


def attempts_of(session: Session, delivery_ids: Sequence[uuid.UUID]) -> list[Attempt]:
    stmt = select(Attempt).where(among(session, Attempt.delivery_id, delivery_ids))
    return list(session.scalars(stmt.order_by(Attempt.id)))
