"""A batch statement's plan stays linear in the batch even as a generic plan.

psycopg prepares a statement after a few executions and PostgreSQL may then keep one generic
plan for it, costed without the parameters: an unnest of an array parameter is guessed at 10
rows, and nested loops look cheapest. A plan that rescans such an array once per row is fine
for those 10 and quadratic for a batch of 500 (seen: 250,000 comparisons, ~40-90 ms of database
CPU per push batch), so the check reads the plan PostgreSQL actually ran (auto_explain) with
generic plans forced, only nested loops and no whole-table scans allowed: whatever the join
order, no array or CTE may be scanned more than once, and no index may be read beyond the
batch (a state index holds every accepted message of a running broadcast).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from notifier.store import claims, repo
from notifier.store.db import transaction
from notifier.store.models import Delivery, Message, User

BATCH = 100
TABLE = 3000  # rows in the table: enough for the planner to cost a scan of it as dear


def _analyze() -> None:
    with transaction() as s:
        s.execute(text("ANALYZE messages, deliveries"))


def _queued_pushes(n: int, user: str = "u1") -> list[uuid.UUID]:
    """n one-push messages of a new user, their pushes queued; returns the delivery ids."""
    now = datetime.now(UTC)
    messages = [
        {"id": uuid.uuid4(), "user_id": user, "policy": "push_only", "state": "accepted",
         "push_data": {}, "sms_params": {}, "receipt_deadline_s": 30,
         "expires_at": now + timedelta(hours=1), "created_at": now, "updated_at": now}
        for _ in range(n)
    ]  # fmt: skip
    deliveries = [
        {"id": uuid.uuid4(), "message_id": m["id"], "channel": "push", "lane": "push_bulk",
         "platform": "apns", "target": "t" * 64, "state": "queued", "attempts": 0,
         "created_at": now, "updated_at": now}
        for m in messages
    ]  # fmt: skip
    with transaction() as s:
        s.add(User(id=user, created_at=now, updated_at=now))
        s.flush()
        repo.insert_rows(s, Message, messages)
        repo.insert_rows(s, Delivery, deliveries)
    return [cast(uuid.UUID, d["id"]) for d in deliveries]


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _reads(plans: list[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each node of these plans with the rows it read in all its loops (kept or filtered)."""
    for node in (n for p in plans for n in _nodes(p)):
        read = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
        yield read * node.get("Actual Loops", 1), node


# A generic plan made of nested loops: what a planner that guesses 10 rows for the batch picks.
GENERIC_NESTED_LOOPS = (
    "SET LOCAL plan_cache_mode = force_generic_plan",
    "SET LOCAL enable_hashjoin = off",
    "SET LOCAL enable_mergejoin = off",
    # The tables here are small enough to read whole; in production they are not.
    "SET LOCAL enable_seqscan = off",
)


def _plans_ran(
    session: Session, work: Any, planner: tuple[str, ...] = GENERIC_NESTED_LOOPS
) -> list[dict[str, Any]]:
    """Run `work(session)` with these planner settings (by default a generic plan of nested
    loops); the plans it ran, as auto_explain saw them."""
    raw = session.connection().connection.driver_connection
    assert raw is not None
    notices: list[str] = []
    raw.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    for setting in (
        "LOAD 'auto_explain'",
        *planner,
        "SET LOCAL auto_explain.log_min_duration = 0",
        "SET LOCAL auto_explain.log_analyze = on",
        "SET LOCAL auto_explain.log_format = json",
        "SET LOCAL auto_explain.log_level = notice",
    ):
        session.execute(text(setting))
    notices.clear()
    work(session)
    # auto_explain reports a statement run through SQLAlchemy's own cursor only once the next
    # one reaches the server: one more, so that the last statement of `work` is among those read.
    session.execute(text("SELECT 1")).all()
    plans = [json.loads(n.split("plan:", 1)[1]) for n in notices if "plan:" in n]
    return [p["Plan"] for p in plans]


def test_an_outcome_record_visits_each_row_once_under_a_generic_plan(pg):
    _analyze()  # statistics of the empty tables: the planner believes every batch is tiny
    ids = _queued_pushes(TABLE)[:BATCH]
    with transaction() as s:
        claimed, _ = claims.claim_pushes(s, ids)
    assert len(claimed) == BATCH
    rows = [
        {"id": d.id, "state": "sent", "error_code": None, "error_detail": None,
         "provider_ref": f"apns-{d.id}", "next_attempt_at": None}
        for d in claimed
    ]  # fmt: skip
    with transaction() as s:
        written: set[uuid.UUID] = set()
        plans = _plans_ran(s, lambda s: written.update(repo.set_outcomes(s, rows)))
    assert written == set(ids)
    updates = [p for p in plans if p["Node Type"] == "ModifyTable"]
    assert updates, "auto_explain reported no plan for the outcome record"
    for node in (n for p in updates for n in _nodes(p)):
        assert node.get("Rows Removed by Join Filter", 0) == 0, node
        if node["Node Type"] in ("Function Scan", "CTE Scan"):
            assert node["Actual Loops"] == 1, f"{node['Node Type']} rescanned: {node}"


def test_finishing_a_batch_of_messages_reads_only_that_batch(pg):
    """Not every accepted message of the table: the state is checked on the locked rows."""
    _analyze()  # statistics of the empty tables: any state looks rare
    _queued_pushes(TABLE)
    with transaction() as s:
        accepted = select(Message.id).where(Message.state == "accepted")
        ids = list(s.scalars(accepted.order_by(Message.id).limit(BATCH)))
    with transaction() as s:
        finished: list[uuid.UUID] = []
        plans = _plans_ran(s, lambda s: finished.extend(repo.finish_messages(s, ids, "delivered")))
    assert sorted(finished) == ids
    for node in (n for p in plans for n in _nodes(p)):
        kept_or_dropped = sum(
            node.get(k, 0)
            for k in ("Actual Rows", "Rows Removed by Filter", "Rows Removed by Index Recheck")
        )
        visited = kept_or_dropped * node.get("Actual Loops", 1)
        # each id may meet a few row versions in an index, never the rest of the table
        assert visited <= 4 * BATCH, f"{node['Node Type']} read {visited} rows: {node}"


def test_starting_receipt_clocks_never_rereads_the_table_per_message(pg):
    """Statistics taken while no message waited for its clock (null_frac 0: autovacuum ran
    between broadcasts) once made `receipt_due_at IS NULL` look like a single row, and the
    planner, with the batch's own ids in hand, scanned the table once for each message of the
    batch (2.4-3.1 s a statement for a push batch of 1,000 at 24,000 messages)."""
    _queued_pushes(TABLE)
    due = datetime.now(UTC) + timedelta(seconds=30)
    with transaction() as s:
        s.execute(text("UPDATE messages SET receipt_due_at = :due"), {"due": due})
    _analyze()  # every message has its clock: a NULL one looks rare
    _queued_pushes(TABLE, "u2")  # a new broadcast's, none started yet
    with transaction() as s:
        waiting = select(Message.id).where(Message.receipt_due_at.is_(None))
        ids = list(s.scalars(waiting.order_by(Message.id).limit(BATCH)))
    with transaction() as s:  # the planner's own choice, as in production
        plans = _plans_ran(s, lambda s: repo.start_clocks(s, dict.fromkeys(ids, due)), ())
    with transaction() as s:
        started = select(Message.id).where(Message.receipt_due_at == due, Message.id.in_(ids))
        assert sorted(s.scalars(started)) == ids
    assert plans, "auto_explain reported no plan for starting the clocks"
    for read, node in _reads(plans):
        assert node.get("Rows Removed by Join Filter", 0) == 0, node
        # Read once, a small table may be cheapest whole; read again per message, never.
        if node["Actual Loops"] > 1:
            assert read <= 4 * BATCH, json.dumps(node)


def test_withdrawing_queued_pushes_reads_only_the_batch_whatever_the_statistics_say(pg):
    """A decision that withdraws queued pushes names them by id; statistics taken while
    nothing was queued must not send the planner through every queued row of a broadcast
    (the partial indexes on queued rows hold a whole audience while it is sent)."""
    _analyze()  # the empty tables: nothing looks queued
    queued = _queued_pushes(TABLE)
    ids = sorted(queued)[:BATCH]
    with transaction() as s:  # the planner's own choice, as in production
        moved: list[uuid.UUID] = []
        plans = _plans_ran(
            s, lambda s: moved.extend(repo.transition(s, ids, "queued", "cancelled")), ()
        )
    assert sorted(moved) == ids
    assert plans, "auto_explain reported no plan for the withdrawal"
    for read, node in _reads(plans):
        if node["Node Type"] in ("Index Scan", "Bitmap Index Scan", "Index Only Scan"):
            assert read <= 4 * BATCH, json.dumps(node)


def test_a_receipt_check_reads_the_due_messages_not_every_sent_push(pg):
    """Autovacuum analyzes each table on its own schedule: deliveries while a broadcast's
    pushes were still queued (nothing looks sent), messages later, while they waited for their
    receipts (most look due). The check then planned as a scan of every delivery for the few
    it thought sent (a parallel scan, ~100 ms every 0.1 s slot at 300,000 recipients) instead
    of a look at the messages that are due, of which there are a handful."""
    queued = _queued_pushes(TABLE)
    now = datetime.now(UTC)
    with transaction() as s:
        s.execute(text("ANALYZE deliveries"))  # every push queued
        s.execute(text("UPDATE messages SET receipt_due_at = :due"), {"due": now - timedelta(1)})
        s.execute(text("ANALYZE messages"))  # every message due
        s.execute(text("UPDATE deliveries SET state = 'sent'"))
    with transaction() as s:  # ... and then acknowledged, all but a few
        acked = queued[20:]
        s.execute(update(Delivery).where(Delivery.id.in_(acked)).values(state="acked"))
        done = select(Delivery.message_id).where(Delivery.id.in_(acked))
        s.execute(update(Message).where(Message.id.in_(done)).values(state="delivered"))
        due = list(s.scalars(select(Delivery.message_id).where(Delivery.id.in_(queued[:20]))))
    with transaction() as s:  # the planner's own choice, as in production
        found: list[uuid.UUID] = []
        plans = _plans_ran(s, lambda s: found.extend(repo.overdue_messages(s, now, BATCH)), ())
    assert sorted(found) == sorted(due)
    assert plans, "auto_explain reported no plan for the receipt check"
    for read, node in _reads(plans):
        assert read <= 4 * len(due), json.dumps(node)


def test_the_sweep_s_walk_looks_only_at_the_messages_it_walks(pg):
    """One look per message walked at its deliveries, never all open deliveries hashed at
    once: with statistics that made open deliveries look rare, the planner did that once per
    sweep at 300,000 recipients (~240 ms a sweep, growing with the table). A table this small
    does not tempt it; this holds the shape the statement now forces."""
    queued = _queued_pushes(TABLE)
    with transaction() as s:
        s.execute(text("UPDATE deliveries SET state = 'acked'"))
        s.execute(text("ANALYZE deliveries"))  # every delivery ended
        s.execute(text("UPDATE deliveries SET state = 'sent'"))  # a broadcast's, in flight
        ended = queued[:3]
        s.execute(update(Delivery).where(Delivery.id.in_(ended)).values(state="acked"))
        lost = sorted(s.scalars(select(Delivery.message_id).where(Delivery.id.in_(ended))))
    later = datetime.now(UTC) + timedelta(hours=1)
    with transaction() as s:  # the planner's own choice, as in production
        found: list[uuid.UUID] = []
        plans = _plans_ran(
            s, lambda s: found.extend(repo.unfinished_messages(s, later, 10, None, TABLE)[0]), ()
        )
    assert sorted(found) == lost
    assert plans, "auto_explain reported no plan for the sweep's walk"
    for read, node in _reads(plans):
        if node.get("Relation Name") == "deliveries":  # one look per message walked
            assert node["Actual Loops"] == TABLE, json.dumps(node)
            assert read <= 2 * TABLE, json.dumps(node)


def test_the_walk_and_a_search_by_state_use_the_partial_state_index_under_a_generic_plan(pg):
    """ix_messages_state_created leaves delivered messages out (migration 0017), so a lookup
    by state matches it only with the state written into the statement: a generic plan
    cannot look at a bound value. Bound, the walk would read every message instead."""
    from notifier import search

    _queued_pushes(TABLE)
    _analyze()
    later = datetime.now(UTC) + timedelta(hours=1)
    with transaction() as s:
        plans = _plans_ran(s, lambda s: repo.unfinished_messages(s, later, 10, None, 50))
    indexes = {n.get("Index Name") for p in plans for n in _nodes(p)}
    assert "ix_messages_state_created" in indexes, json.dumps(plans)
    assert search.find_messages(state="accepted", limit=5)["next_cursor"] is not None
    assert search.find_messages(state="delivered", limit=5)["items"] == []
