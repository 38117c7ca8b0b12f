"""Receipt deadlines are checked per time slot: one check advances every message due by then."""

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from notifier.domain import states
from notifier.pipeline import advance, publish
from notifier.pipeline.advance import advance_due
from notifier.store.db import transaction
from notifier.store.models import Delivery, Message, User


@pytest.fixture(autouse=True)
def nothing_covered_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a process covered belongs to its database; each test starts with a fresh one."""
    monkeypatch.setattr(advance, "_covered_until", None)


def _pushed(user: str, due: datetime) -> uuid.UUID:
    """A push_only message whose push went out and awaits its receipt until `due`."""
    now = datetime.now(UTC)
    with transaction() as s:
        s.add(User(id=user, created_at=now, updated_at=now))
        s.flush()
        message = Message(
            id=uuid.uuid4(),
            user_id=user,
            policy="push_only",
            state=states.ACCEPTED,
            push_data={},
            sms_params={},
            receipt_deadline_s=30,
            receipt_due_at=due,
            expires_at=now + timedelta(hours=1),
            created_at=now,
            updated_at=now,
        )
        s.add(message)
        s.flush()
        s.add(
            Delivery(
                id=uuid.uuid4(),
                message_id=message.id,
                channel=states.PUSH,
                platform="apns",
                target="ab" * 32,
                state=states.SENT,
                attempts=1,
                created_at=now,
                updated_at=now,
            )
        )
    return message.id


def _states(message_id: uuid.UUID) -> tuple[str, list[str]]:
    with transaction() as s:
        message = s.get(Message, message_id)
        assert message is not None
        rows = s.query(Delivery.state).filter(Delivery.message_id == message_id).all()
        return message.state, [r.state for r in rows]


def test_a_slot_check_advances_what_is_due_and_leaves_the_rest(migrated):
    now = datetime.now(UTC)
    due = [_pushed(f"due-{i}", now - timedelta(seconds=1 + i)) for i in range(3)]
    later = _pushed("later", now + timedelta(minutes=5))
    assert advance_due(now) == 3
    for message_id in due:
        assert _states(message_id) == (states.UNCONFIRMED, [states.UNCONFIRMED])
    assert _states(later) == (states.ACCEPTED, [states.SENT])
    assert advance_due(now) == 0  # a second check of the same slot finds nothing


def test_one_check_is_scheduled_per_slot_and_process(monkeypatch: pytest.MonkeyPatch):
    sent: list[tuple[str, list[object], float | None]] = []

    def capture(name: str, args: list[object], countdown: float | None = None, **_: object) -> bool:
        sent.append((name, args, countdown))
        return True

    monkeypatch.setattr(publish, "_send", capture)
    monkeypatch.setattr(publish, "_scheduled_slots", {})
    start = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) + 10, UTC)  # a boundary
    slot = timedelta(seconds=publish.RECEIPT_SLOT_SECONDS)
    for fraction in (0.01, 0.3, 0.7, 0.99):  # one slot: (start, start + slot]
        publish.receipts_due(start + slot * fraction)
    publish.receipts_due(start + slot * 1.01)  # the next slot
    assert [args for _, args, _ in sent] == [
        [(start + slot).isoformat()],
        [(start + 2 * slot).isoformat()],
    ]
    assert all(name == "notifier.receipts.due" for name, _, _ in sent)
    assert all(c is not None and 9 < c < 11 for _, _, c in sent)


def test_a_deadline_that_only_labels_is_checked_in_one_second_slots(
    monkeypatch: pytest.MonkeyPatch,
):
    sent: list[list[object]] = []

    def capture(name: str, args: list[object], countdown: float | None = None, **_: object) -> bool:
        sent.append(args)
        return True

    monkeypatch.setattr(publish, "_send", capture)
    monkeypatch.setattr(publish, "_scheduled_slots", {})
    start = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) + 10, UTC)
    second = timedelta(seconds=publish.LABEL_SLOT_SECONDS)
    for fraction in (0.05, 0.35, 0.65, 0.95):  # ten fine slots, one label slot
        publish.receipts_due(start + second * fraction, label_only=True)
    publish.receipts_due(start + second * 0.5)  # a deadline that starts a step: its own slot
    step = timedelta(seconds=publish.RECEIPT_SLOT_SECONDS)
    assert sent == [[(start + second).isoformat()], [(start + 5 * step).isoformat()]]


def test_a_push_on_its_plan_s_last_step_schedules_a_label_check(monkeypatch: pytest.MonkeyPatch):
    from notifier.pipeline import push

    checks: list[tuple[datetime, bool]] = []
    monkeypatch.setattr(
        publish, "receipts_due", lambda due, label_only=False: checks.append((due, label_only))
    )
    due = datetime.now(UTC) + timedelta(seconds=30)

    def message(policy: str, step: int) -> Any:
        return SimpleNamespace(
            id=uuid.uuid4(), policy=policy, chain=None, step=step, receipt_deadline_s=30,
            receipt_due_at=due, expires_at=due + timedelta(hours=1), confirm_trigger="not_received",
        )  # fmt: skip

    push._schedule_receipt_checks([message("push_only", 0), message("supplement", 0)])
    assert sorted(checks) == [(due, False), (due, True)]


def test_a_check_of_a_slot_already_covered_reads_nothing(migrated):
    now = datetime.now(UTC)
    assert advance_due(now) == 0  # covers everything due by about now
    late = _pushed("late", now - timedelta(seconds=5))  # committed after that check
    assert advance_due(now - timedelta(seconds=1)) == 0  # a stale slot: skipped, no query
    assert _states(late) == (states.ACCEPTED, [states.SENT])
    assert advance_due(datetime.now(UTC)) == 1  # the slot its publisher would schedule


def test_a_deadline_already_past_is_checked_in_the_next_slot(monkeypatch: pytest.MonkeyPatch):
    sent: list[float | None] = []

    def capture(name: str, args: list[object], countdown: float | None = None, **_: object) -> bool:
        sent.append(countdown)
        return True

    monkeypatch.setattr(publish, "_send", capture)
    monkeypatch.setattr(publish, "_scheduled_slots", {})
    publish.receipts_due(datetime.now(UTC) - timedelta(minutes=5))
    assert len(sent) == 1 and sent[0] is not None
    assert 0 <= sent[0] <= publish.RECEIPT_SLOT_SECONDS


def test_a_receipt_after_the_deadline_turns_an_unconfirmed_message_delivered(migrated):
    from notifier import producer
    from notifier.store.models import Event

    now = datetime.now(UTC)
    message_id = _pushed("late-ack", now - timedelta(seconds=1))
    assert advance_due(now) == 1
    assert _states(message_id) == (states.UNCONFIRMED, [states.UNCONFIRMED])
    with transaction() as s:
        delivery_id = s.query(Delivery.id).filter(Delivery.message_id == message_id).scalar()
    assert producer.ack(str(delivery_id))
    assert _states(message_id) == (states.DELIVERED, [states.ACKED])
    with transaction() as s:
        rows = s.query(Event).filter(Event.message_id == message_id).order_by(Event.id)
        kinds = [e.kind for e in rows]
    assert kinds[-2:] == [states.ACKED, states.DELIVERED]
    assert not producer.ack(str(delivery_id))  # a repeat changes nothing
    assert _states(message_id) == (states.DELIVERED, [states.ACKED])


def test_the_first_send_starts_a_clock_and_later_ones_keep_it(migrated):
    """repo.start_clocks: messages without a deadline get theirs (several deadlines in one
    batch), one that has a deadline already keeps it."""
    from notifier.store import repo

    now = datetime.now(UTC).replace(microsecond=0)
    started, unset, other = (_pushed(f"c{i}", now) for i in range(3))
    with transaction() as s:
        s.query(Message).filter(Message.id.in_([unset, other])).update(
            {Message.receipt_due_at: None}
        )
    soon, later = now + timedelta(seconds=30), now + timedelta(seconds=90)
    with transaction() as s:
        repo.start_clocks(s, {started: later, unset: soon, other: later})
    with transaction() as s:
        dues = dict(s.query(Message.id, Message.receipt_due_at))
    assert dues == {started: now, unset: soon, other: later}
