"""Broadcast fan-out on each database: chunked, resumable, never a user twice."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text, update

from config.settings import get_settings
from notifier import broadcasts, producer
from notifier.domain.errors import InvalidInput
from notifier.pipeline import fanout
from notifier.pipeline.sweep import sweep
from notifier.store.db import transaction
from notifier.store.models import Broadcast, Delivery, Device, Event, Message, User, UserTag
from notifier.store.repo import utcnow
from notifier.store.views import message_view

N = 1200


def seed(n: int = N) -> None:
    """n users, one device each; every third tagged vip; half on 2.10, half on 2.9; en / de."""
    now = utcnow()
    users = [{"id": f"u{i:05d}", "created_at": now, "updated_at": now} for i in range(n)]
    devices = [
        {
            "id": uuid.uuid4(),
            "user_id": u["id"],
            "platform": "apns" if i % 2 else "fcm",
            "token": f"{i:064x}" if i % 2 else f"fcm-token-{i:032d}",
            "state": "active",
            "app_version": "2.10.1" if i % 2 else "2.9.4",
            "locale": "en_US" if i % 4 < 2 else "de-DE",
            "created_at": now,
            "updated_at": now,
        }
        for i, u in enumerate(users)
    ]
    tags = [{"user_id": u["id"], "tag": "vip"} for i, u in enumerate(users) if i % 3 == 0]
    with transaction() as s:
        s.execute(insert(User), users)
        s.execute(insert(Device), devices)
        s.execute(insert(UserTag), tags)


def counts(broadcast_id: uuid.UUID) -> tuple[int, int, int]:
    with transaction() as s:
        messages = s.scalar(
            select(func.count()).select_from(Message).where(Message.broadcast_id == broadcast_id)
        )
        users = s.scalar(
            select(func.count(func.distinct(Message.user_id))).where(
                Message.broadcast_id == broadcast_id
            )
        )
        deliveries = s.scalar(
            select(func.count())
            .select_from(Delivery)
            .join(Message, Message.id == Delivery.message_id)
            .where(Message.broadcast_id == broadcast_id)
        )
    return int(messages or 0), int(users or 0), int(deliveries or 0)


@pytest.fixture
def audience(migrated: str) -> None:
    seed()


def test_fan_out_writes_one_message_per_user_in_chunks(audience):
    accepted = broadcasts.send_broadcast_payload(
        {"segment": {"tags": ["vip"]}, "push": {"title": "Sale", "body": "20 % off"}}
    )
    broadcast_id = uuid.UUID(accepted["broadcast_id"])
    assert accepted["planned"] == N // 3
    first = fanout.fan_out_chunk(broadcast_id, size=150)
    assert (len(first.messages), first.bulk, first.finished) == (150, True, False)
    fanout.publish_chunk(first)
    assert fanout.fan_out(broadcast_id)
    assert counts(broadcast_id) == (N // 3, N // 3, N // 3)
    progress = broadcasts.progress(broadcast_id)
    assert (progress["state"], progress["enqueued"], progress["deliveries"]) == (
        "enqueued",
        N // 3,
        {"queued": N // 3},
    )
    # a redelivered or duplicated fan-out task finds nothing left to write
    assert fanout.fan_out(broadcast_id)
    assert counts(broadcast_id)[0] == N // 3
    # promotions travel on the bulk lane, a few hundred deliveries per task
    assert len(list(get_settings().broker_folder.glob("*.push_bulk.msg"))) == 1 + 1  # 150 + 250


def test_a_fanned_out_message_s_timeline_starts_with_its_acceptance(audience):
    """The fan-out writes no event rows (the message row records the acceptance); the view
    shows it first, once, as for every other message."""
    broadcast_id = producer.send_broadcast({"tags": ["vip"]}, {"body": "hello"})
    fanout.fan_out_chunk(broadcast_id, size=10)
    with transaction() as s:
        message_id = s.scalars(
            select(Message.id).where(Message.broadcast_id == broadcast_id)
        ).first()
        written = s.scalar(
            select(func.count()).select_from(Event).where(Event.message_id == message_id)
        )
    assert message_id is not None and written == 0
    [first] = message_view(message_id)["timeline"]
    assert (first["kind"], first["detail"]) == ("accepted", f"broadcast {broadcast_id}")
    # a message fanned out before (with its own event row) shows that one, not a second
    with transaction() as s:
        row = {"message_id": message_id, "kind": "accepted", "created_at": utcnow()}
        s.execute(insert(Event), [{**row, "detail": f"broadcast {broadcast_id}"}])
    assert [e["kind"] for e in message_view(message_id)["timeline"]] == ["accepted"]


def test_a_fan_out_that_died_resumes_after_its_last_chunk(audience):
    broadcast_id = producer.send_broadcast({"all": True}, {"body": "hello"})
    fanout.fan_out_chunk(broadcast_id, size=500)
    # the worker died here; the sweep finds the stalled fan-out and publishes it again
    with transaction() as s:
        s.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id)
            .values(updated_at=utcnow() - timedelta(minutes=5))
        )
    sweep()
    assert len(list(get_settings().broker_folder.glob("*.broadcast.msg"))) == 2
    assert fanout.fan_out(broadcast_id)
    assert counts(broadcast_id)[:2] == (N, N)


def test_device_filters_select_by_platform_locale_and_version(audience):
    segment = {"platform": "apns", "locale": "en", "app_version_min": "2.10"}
    broadcast_id = producer.send_broadcast(segment, {"body": "new feature"})
    assert fanout.fan_out(broadcast_id)
    with transaction() as s:
        rows = s.execute(
            select(Device.platform, Device.locale, Device.app_version)
            .join(Delivery, Delivery.device_id == Device.id)
            .join(Message, Message.id == Delivery.message_id)
            .where(Message.broadcast_id == broadcast_id)
        ).all()
    assert len(rows) == N // 4  # odd i (apns, 2.10.1) with i % 4 < 2 (en_US)
    assert {tuple(r) for r in rows} == {("apns", "en_US", "2.10.1")}


def test_bad_broadcasts_are_refused_before_anything_is_written(audience):
    cases: list[tuple[dict[str, Any], str]] = [
        ({"segment": {}, "push": {"body": "x"}}, "segment"),
        ({"segment": {"all": True}, "push": {}}, "push.body"),
        ({"segment": {"all": True}, "push": {"body": "x"}, "class": "verification"}, "class"),
    ]
    for payload, field in cases:
        with pytest.raises(InvalidInput) as err:
            broadcasts.send_broadcast_payload(payload)
        assert err.value.field == field
    with transaction() as s:
        assert s.scalar(select(func.count()).select_from(Broadcast)) == 0


def _scanned(plan: dict[str, Any], relation: str) -> int:
    """Rows the plan's scans of `relation` returned (EXPLAIN ANALYZE, JSON)."""
    own = plan["Actual Rows"] * plan["Actual Loops"] if plan.get("Relation Name") == relation else 0
    return own + sum(_scanned(child, relation) for child in plan.get("Plans", []))


def test_each_chunk_of_a_tag_walk_reads_only_the_tagged_users_past_its_cursor(pg):
    """The cursor bounds the tag lookup too: a chunk late in the walk must not read the tag's
    users from the first one (at a million recipients that was 88 ms per chunk, and growing)."""
    seed()
    from notifier.domain.segments import Segment
    from notifier.store.audience import next_users_query

    with transaction() as s:
        s.execute(text("ANALYZE"))
        stmt = next_users_query(Segment(tags=("vip",)), "u00900", 50)
        literal = {"literal_binds": True}
        sql = str(stmt.compile(dialect=s.get_bind().dialect, compile_kwargs=literal))
        plan = s.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()[0]["Plan"]
        users = list(s.scalars(stmt))
    past_cursor = len([i for i in range(901, N) if i % 3 == 0])  # the vip users after u00900
    assert users == [f"u{i:05d}" for i in range(901, N) if i % 3 == 0][:50]
    assert _scanned(plan, "user_tags") <= past_cursor


def test_a_chunk_s_devices_are_read_by_its_range_of_users(pg):
    """A chunk's devices are looked up by the range of users it spans (its first user to its
    last), on devices and on the tags alike: by the list of its users, 5,000 of them at
    300,000 recipients, the planner read both tables whole for every chunk."""
    seed()
    from notifier.domain.segments import Segment
    from notifier.store.audience import devices_query

    with transaction() as s:
        s.execute(text("ANALYZE"))
        stmt = devices_query(Segment(tags=("vip",)), "u00903", "u01047")
        literal = {"literal_binds": True}
        sql = str(stmt.compile(dialect=s.get_bind().dialect, compile_kwargs=literal))
        plan = s.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()[0]["Plan"]
        users = [row[3] for row in s.execute(stmt)]
    assert users == [f"u{i:05d}" for i in range(901, 1050) if i % 3 == 0]
    assert _scanned(plan, "devices") <= 150  # the users from u00903 to u01047
    assert _scanned(plan, "user_tags") <= 150


def test_a_tag_walk_reads_only_its_chunk_whatever_the_audiences_before_it(pg):
    """Five audiences of one tag each, the last one walked from its middle: a walk over
    devices joined to the tags was costed as if the tag were independent of the cursor, and
    the planner read and sorted everything past the cursor for each chunk."""
    audiences, size, limit = 5, 2000, 100
    now = utcnow()
    users = [f"a{a}-{i:05d}" for a in range(audiences) for i in range(size)]
    with transaction() as s:
        s.execute(insert(User), [{"id": u, "created_at": now, "updated_at": now} for u in users])
        s.execute(
            insert(Device),
            [
                {"id": uuid.uuid4(), "user_id": u, "platform": "apns", "token": f"{k:064x}",
                 "state": "active", "created_at": now, "updated_at": now}
                for k, u in enumerate(users)
            ],
        )  # fmt: skip
        s.execute(insert(UserTag), [{"user_id": u, "tag": u[:2]} for u in users])
    from notifier.domain.segments import Segment
    from notifier.store.audience import next_users_query

    cursor = f"a4-{size // 2:05d}"
    with transaction() as s:
        s.execute(text("ANALYZE"))
        stmt = next_users_query(Segment(tags=("a4",)), cursor, limit)
        literal = {"literal_binds": True}
        sql = str(stmt.compile(dialect=s.get_bind().dialect, compile_kwargs=literal))
        plan = s.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()[0]["Plan"]
        walked = list(s.scalars(stmt))
    assert walked == [f"a4-{i:05d}" for i in range(size // 2 + 1, size // 2 + 1 + limit)]
    assert _scanned(plan, "devices") + _scanned(plan, "user_tags") <= 2 * limit


def _written(broadcast_id: uuid.UUID) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """A broadcast's messages and deliveries as the values they were written with, less what
    differs between two broadcasts anyway (ids, clocks, the broadcast id)."""
    with transaction() as s:
        messages = s.execute(
            select(*(c for c in Message.__table__.c if c.key not in _OWN_MESSAGE))
            .where(Message.broadcast_id == broadcast_id)
            .order_by(Message.user_id)
        ).all()
        deliveries = s.execute(
            select(Message.user_id, *(c for c in Delivery.__table__.c if c.key not in _OWN))
            .join(Message, Message.id == Delivery.message_id)
            .where(Message.broadcast_id == broadcast_id)
            .order_by(Message.user_id, Delivery.device_id)
        ).all()
    return [tuple(r) for r in messages], [tuple(r) for r in deliveries]


_OWN = {"id", "message_id", "created_at", "updated_at"}
_OWN_MESSAGE = _OWN | {"broadcast_id", "expires_at"}


def test_postgresql_writes_a_chunk_itself_with_the_values_the_python_path_writes(
    pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a chunk's rows are made by one INSERT … SELECT (store.fan_out_rows); a
    segment with a minimum app version still goes through Python. Both write the same rows:
    one message per user, one delivery per device (a second device for some users here)."""
    seed()
    now = utcnow()
    extra = [
        {"id": uuid.uuid4(), "user_id": f"u{i:05d}", "platform": "fcm", "token": f"second-{i}",
         "state": "active", "app_version": "3.0", "locale": "en", "created_at": now,
         "updated_at": now}
        for i in range(0, 300, 9)
    ]  # fmt: skip
    with transaction() as s:
        s.execute(insert(Device), extra)
    from notifier.store import fan_out_rows

    chunks_in_sql: list[str] = []
    insert_chunk = fan_out_rows.insert_chunk

    def counted(*args: Any) -> tuple[list[str], list[str]]:
        chunks_in_sql.append(args[3])  # the chunk's last user
        return insert_chunk(*args)

    monkeypatch.setattr(fan_out_rows, "insert_chunk", counted)
    payload = {"title": "Sale", "body": "20 % off", "data": {"k": "v"}, "collapse_id": "sale"}
    in_sql = producer.send_broadcast({"tags": ["vip"]}, payload)
    in_python = producer.send_broadcast({"tags": ["vip"], "app_version_min": "0"}, payload)
    first = fanout.fan_out_chunk(in_sql, size=150)
    assert fanout.fan_out(in_sql)
    assert chunks_in_sql == ["u00447", f"u{N - 3:05d}"]  # 150, then the other 250 in one chunk
    assert fanout.fan_out(in_python)
    assert len(chunks_in_sql) == 2  # a minimum app version is checked in Python
    assert _written(in_sql) == _written(in_python)
    messages, deliveries = _written(in_sql)
    assert len(messages) == N // 3 and len(deliveries) == N // 3 + len(extra)
    assert len(first.messages) == 150 and len(first.deliveries) == 150 + len(extra)
    ids = [uuid.UUID(i) for i in first.deliveries]
    assert {i.version for i in ids} == {7}  # time-ordered, as notifier.store.ids makes them
    with transaction() as s:
        stored = s.scalars(select(Delivery.id).where(Delivery.id.in_(ids))).all()
    assert len(stored) == len(ids)


def test_the_first_chunk_is_one_push_batch_so_the_pushes_start_early(audience, env):
    env.setenv("NOTIFIER_PUSH_CONCURRENCY", "100")
    get_settings.cache_clear()
    broadcast_id = producer.send_broadcast({"all": True}, {"body": "hello"})
    first = fanout.fan_out_chunk(broadcast_id)
    second = fanout.fan_out_chunk(broadcast_id)
    assert (len(first.messages), len(second.messages)) == (100, N - 100)
    fanout.publish_chunk(first)
    assert len(list(get_settings().broker_folder.glob("*.push_bulk.msg"))) == 1
