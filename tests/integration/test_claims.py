"""Conditional updates are claims: of several concurrent claimers exactly one wins each row."""

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from notifier.domain import states
from notifier.store import claims, repo
from notifier.store.db import transaction
from notifier.store.models import Delivery, Message, User
from tests.helpers import all_at_once, row_held


def _seed(n: int, lane: str | None = None, user: str = "u1") -> list[uuid.UUID]:
    now = datetime.now(UTC)
    with transaction() as s:
        s.add(User(id=user, phone="+8613800138000", created_at=now, updated_at=now))
        s.flush()
        msg = Message(
            id=uuid.uuid4(),
            user_id=user,
            policy="sms_only",
            state="accepted",
            push_data={},
            sms_params={},
            receipt_deadline_s=30,
            expires_at=now + timedelta(hours=1),
            created_at=now,
            updated_at=now,
        )
        s.add(msg)
        s.flush()
        ids = [uuid.uuid4() for _ in range(n)]
        s.add_all(
            Delivery(
                id=i,
                message_id=msg.id,
                channel="sms",
                target="+8613800138000",
                state=states.QUEUED,
                lane=lane,
                attempts=0,
                created_at=now + timedelta(microseconds=k),  # oldest first: in seed order
                updated_at=now,
            )
            for k, i in enumerate(ids)
        )
    return ids


def test_concurrent_claims_never_overlap(migrated):
    ids = _seed(50)
    won: list[list[uuid.UUID]] = []

    def claim(_k: int) -> None:
        with transaction() as s:
            won.append(repo.transition(s, ids, states.QUEUED, states.SENDING))

    all_at_once(claim)
    claimed = [i for batch in won for i in batch]
    assert sorted(claimed) == sorted(ids)  # every row claimed exactly once


def test_claim_from_wrong_state_moves_nothing(migrated):
    ids = _seed(3)
    with transaction() as s:
        assert repo.transition(s, ids, states.SENT, states.ACKED) == []
        assert len(repo.transition(s, ids, states.QUEUED, states.SENDING)) == 3
        assert repo.transition(s, ids, states.QUEUED, states.SENDING) == []


def test_batch_claims_take_each_queued_row_once_and_nothing_else(migrated):
    """Both claims (ORM rows for SMS, plain rows for push) lock the named rows in id order and
    move those still queued, counting the attempt; rows in any other state stay as they are."""
    ids = _seed(8)
    with transaction() as s:
        repo.transition(s, ids[:2], states.QUEUED, states.SENT)
    with transaction() as s:
        objects, messages = claims.claim_queued(s, ids[:5])
        rows, push_messages = claims.claim_pushes(s, ids[3:])
    assert sorted(d.id for d in objects) == sorted(ids[2:5])
    assert sorted(d.id for d in rows) == sorted(ids[5:])
    assert all(d.state == states.SENDING and d.attempts == 1 for d in objects)
    assert {d.attempts for d in rows} == {1}
    assert set(messages) == set(push_messages) == {objects[0].message_id}
    with transaction() as s:
        assert claims.claim_queued(s, ids) == ([], {})
        assert claims.claim_pushes(s, ids)[0] == []
        assert {d.state for d in s.query(Delivery).filter(Delivery.id.in_(ids[:2]))} == {"sent"}


def test_concurrent_batch_claims_never_overlap(migrated):
    ids = _seed(60)
    won: list[list[uuid.UUID]] = []

    def claim(k: int) -> None:
        with transaction() as s:
            if k % 2 == 0:  # push claims, the other half SMS claims
                won.append([d.id for d in claims.claim_pushes(s, list(reversed(ids)))[0]])
            else:
                won.append([d.id for d in claims.claim_queued(s, ids)[0]])

    all_at_once(claim)
    claimed = [i for batch in won for i in batch]
    assert sorted(claimed) == sorted(ids)


def test_push_top_up_takes_the_oldest_ready_of_its_lane_up_to_the_size(migrated):
    """One statement on PostgreSQL, two on SQLite: the same rows either way."""
    backlog = _seed(5, lane="push")
    bulk = _seed(2, lane="push_bulk", user="u2")
    later = datetime.now(UTC) + timedelta(minutes=5)
    with transaction() as s:
        waiting = s.get(Delivery, backlog[1])
        assert waiting is not None
        waiting.next_attempt_at = later  # a retry whose time has not come
    with transaction() as s:
        rows, messages = claims.claim_pushes(s, [backlog[4]], claims.TopUp("push", 3))
    assert [d.id for d in rows] == [backlog[0], backlog[2], backlog[4]]  # oldest first
    assert {m.id for m in messages.values()} == {rows[0].message_id}
    with transaction() as s:
        states_now = {d.id: d.state for d in s.query(Delivery)}
    assert [states_now[i] for i in backlog] == ["sending", "queued", "sending", "queued", "sending"]
    assert {states_now[i] for i in bulk} == {"queued"}
    with transaction() as s:  # a task whose row a top-up took still tops up
        rows, _ = claims.claim_pushes(s, [backlog[0]], claims.TopUp("push", 3))
    assert [d.id for d in rows] == [backlog[3]]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_push_top_up_skips_rows_another_claim_holds_without_waiting(migrated):
    backlog = _seed(3, lane="push")
    with row_held(backlog[0]):
        with transaction() as s:
            rows, _ = claims.claim_pushes(s, [backlog[2]], claims.TopUp("push", 10))
        assert {d.id for d in rows} == {backlog[1], backlog[2]}


def test_concurrent_topped_up_push_claims_never_overlap(migrated):
    """Tasks of a transactional lane each name their own row and top up from the same
    backlog at once: every row goes to exactly one of them, and none deadlocks."""
    ids = _seed(80, lane="push")
    won: list[list[uuid.UUID]] = []

    def claim(k: int) -> None:
        for own in ids[k::4]:
            with transaction(one_statement=True) as s:  # as the push stage claims
                won.append(
                    [d.id for d in claims.claim_pushes(s, [own], claims.TopUp("push", 7))[0]]
                )

    all_at_once(claim)
    claimed = [i for batch in won for i in batch]
    assert sorted(claimed) == sorted(ids)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("top_up", [None, claims.TopUp("push", 5)])
def test_a_push_claim_is_one_exchange_with_the_server_and_commits_at_once(
    migrated, monkeypatch: pytest.MonkeyPatch, top_up: claims.TopUp | None
):
    """The push stage's claim runs in autocommit (db.transaction(one_statement=True)): the
    statement, without BEGIN and COMMIT around it, and its rows are claimed for every other
    connection as soon as it returns."""
    backlog = _seed(3, lane="push")
    exchanges: list[object] = []
    wait = psycopg.Connection.wait

    def counted(self: psycopg.Connection[Any], gen: Any, *args: Any, **kwargs: Any) -> Any:
        exchanges.append(gen)
        return wait(self, gen, *args, **kwargs)

    with transaction(one_statement=True) as s:
        raw = s.connection().connection.driver_connection  # checked out (and pinged) first
        assert isinstance(raw, psycopg.Connection)
        with monkeypatch.context() as m:
            m.setattr(psycopg.Connection, "wait", counted)
            rows, _ = claims.claim_pushes(s, [backlog[2]], top_up)
        assert len(exchanges) == 1
        assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # no COMMIT due
        with transaction() as other:
            seen = other.scalars(text("SELECT state FROM deliveries WHERE id = :i"),
                                 {"i": backlog[2]}).one()  # fmt: skip
        assert seen == "sending"
    assert len(rows) == (3 if top_up else 1)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_topped_up_claim_waiting_for_its_own_row_holds_no_other(migrated):
    """The named rows are locked before the top-up looks: a claim that waits for its own row
    (another claim holds it) has taken nothing else meanwhile, so two claims each waiting
    for a row the other topped up with cannot happen."""
    own, other = _seed(2, lane="push")
    taken: list[list[uuid.UUID]] = []
    with row_held(own):
        waiting = threading.Thread(
            target=lambda: taken.append(_claim_topped_up([own])), name="waiting-claim"
        )
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # blocked on its own row
        assert _claim_topped_up([]) == [other]  # free to take: the waiting claim holds nothing
    waiting.join(10)
    assert taken == [[own]]


def _claim_topped_up(ids: list[uuid.UUID]) -> list[uuid.UUID]:
    with transaction() as s:
        return [d.id for d in claims.claim_pushes(s, ids, claims.TopUp("push", 5))[0]]


@contextmanager
def rows_updated_meanwhile(ids: list[uuid.UUID]) -> Iterator[None]:
    """Another transaction updates these rows (as the sweep marks what it re-published) and
    commits when the block ends: a claim started inside waits for their locks and then
    finds them changed since its snapshot."""
    updated, release = threading.Event(), threading.Event()

    def touch() -> None:
        with transaction() as s:
            repo.touch(s, ids, states.QUEUED)
            updated.set()
            release.wait(10)

    toucher = threading.Thread(target=touch, name="touch")
    toucher.start()
    try:
        assert updated.wait(10)
        yield
    finally:
        release.set()
        toucher.join()


CLAIMS: dict[str, Callable[[Session, list[uuid.UUID]], Sequence[Any]]] = {
    "push topped up": lambda s, ids: claims.claim_pushes(s, ids, claims.TopUp("push", 5))[0],
    "push by id": lambda s, ids: claims.claim_pushes(s, ids)[0],
    "sms topped up": lambda s, ids: claims.claim_queued(s, ids, claims.TopUp("push", 5))[0],
}


def _claimed_by_key(kind: str, ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The claim with the plan a busy database gave it (the chosen rows in a nested loop,
    each delivery found by its key), not the hash join or scan a tiny table's estimates
    pick: the lost rows showed under that plan only."""
    with transaction() as s:
        s.execute(text("SET LOCAL enable_hashjoin = off"))
        s.execute(text("SET LOCAL enable_mergejoin = off"))
        s.execute(text("SET LOCAL enable_seqscan = off"))
        return [d.id for d in CLAIMS[kind](s, ids)]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("kind", CLAIMS)
def test_a_claim_takes_every_named_row_updated_while_it_waited(migrated, kind):
    ids = _seed(30, lane="push")
    taken: list[list[uuid.UUID]] = []
    with rows_updated_meanwhile(ids):
        waiting = threading.Thread(target=lambda: taken.append(_claimed_by_key(kind, ids)))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # blocked on the rows' locks
    waiting.join(10)
    assert sorted(taken[0]) == sorted(ids)
