"""Replays and the maintenance sweep on each database: nothing stuck, nothing sent twice."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from config.settings import get_settings
from notifier import producer
from notifier import replay as replays
from notifier.cli import main
from notifier.domain.outcomes import Outcome
from notifier.pipeline import publish
from notifier.pipeline.sms import send_sms
from notifier.pipeline.sweep import sweep
from notifier.store.db import transaction
from notifier.store.models import Delivery, Event, Message
from notifier.store.repo import utcnow
from tests.helpers import approved_catalogue
from tests.integration.test_sms_stage import CarrierDouble, reload

PHONE = "+8613800138000"


@pytest.fixture
def sms_setup(migrated):
    approved_catalogue("Bank", {"NOTE": ("notification", "Statement ready: ${amount}")})
    producer.bind_phone("bob", PHONE)


def sms_only() -> Delivery:
    message_id = producer.send(
        "bob",
        policy="sms_only",
        sms={"template": "NOTE", "params": {"amount": "1"}, "signature": "Bank"},
    )
    with transaction() as s:
        return s.scalars(select(Delivery).where(Delivery.message_id == message_id)).one()


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def published(queue: str) -> int:
    return len(list(get_settings().broker_folder.glob(f"*.{queue}.msg")))


def test_replay_resends_a_failed_sms_once_and_is_safe_twice(sms_setup):
    d = sms_only()
    send_sms([d.id], CarrierDouble([Outcome.rejected(200, "isv.AMOUNT_NOT_ENOUGH")]))
    assert reload(d.id).state == "failed"
    code, out = cli("replay", "--channel", "sms", "--dry-run")
    assert code == 0 and "1 deliveries would be replayed" in out and str(d.id) in out
    assert reload(d.id).state == "failed"  # a dry run changes nothing
    code, out = cli("replay", "--channel", "sms", "--error-code", "isv.AMOUNT_NOT_ENOUGH", "--json")
    assert code == 0 and json.loads(out) == {"selected": 1, "replayed": 1, "skipped": 0}
    row = reload(d.id)
    assert (row.state, row.replays) == ("queued", 1)
    with transaction() as s:
        message = s.get(Message, row.message_id)
        assert message is not None and message.state == "accepted"
        kinds = list(s.scalars(select(Event.kind).where(Event.delivery_id == d.id)))
    assert "replayed" in kinds
    carrier = CarrierDouble()
    send_sms([d.id], carrier)
    assert reload(d.id).state == "submitted" and len(carrier.submitted) == 1
    assert cli("replay", "--channel", "sms") == (
        0,
        "replayed 0 of 0; 0 skipped (moved on meanwhile)\n",
    )


def test_sent_deliveries_need_force(sms_setup):
    code, out = cli("replay", "--state", "submitted")
    assert code == 2 and "--state: submitted cannot be replayed; " in out and "need --force" in out
    assert cli("replay", "--state", "submitted", "--force", "--dry-run")[0] == 0


def test_a_delivery_that_moved_on_is_skipped(sms_setup):
    d = sms_only()
    send_sms([d.id], CarrierDouble([Outcome.rejected(200, "isv.SMS_TEMPLATE_ILLEGAL")]))
    [candidate] = replays.candidates(replays.Selection())
    assert replays.replay([candidate], "first") == (1, 0)
    assert replays.replay([candidate], "second, from a stale list") == (0, 1)


def test_each_replay_gets_a_fresh_attempt_budget(sms_setup, env):
    env.setenv("NOTIFIER_MAX_ATTEMPTS", "2")
    get_settings.cache_clear()
    d = sms_only()
    flaky = Outcome.retry(503, "isp.SYSTEM_ERROR")
    send_sms([d.id], CarrierDouble([flaky]))
    send_sms([d.id], CarrierDouble([flaky]))
    assert (reload(d.id).state, reload(d.id).attempts) == ("failed", 2)
    cli("replay")
    send_sms([d.id], CarrierDouble([flaky]))
    assert (reload(d.id).state, reload(d.id).attempts) == ("queued", 3)  # 3 < 2 * (1 + 1)


def test_bad_replay_input_names_the_option(migrated):
    assert (
        cli("replay", "--message", "nope")[1] == "error: --message: must be a message id (UUID)\n"
    )
    code, out = cli("replay", "--since", "2026-01-02", "--until", "2026-01-01")
    assert code == 2 and "--since: must be before --until" in out


def test_sweep_requeues_a_delivery_whose_worker_died(sms_setup):
    d = sms_only()
    with transaction() as s:  # claimed by a worker that was then killed
        s.execute(
            update(Delivery)
            .where(Delivery.id == d.id)
            .values(state="sending", attempts=1, updated_at=utcnow() - timedelta(hours=1))
        )
    before = published("sms")
    result = sweep()
    assert result.reclaimed == 1
    assert reload(d.id).state == "queued"
    assert published("sms") == before + 1
    with transaction() as s:
        kinds = list(s.scalars(select(Event.kind).where(Event.delivery_id == d.id)))
    assert "lease_expired" in kinds
    carrier = CarrierDouble()
    carrier.known[str(d.id)] = "biz-from-before-the-crash"
    send_sms([d.id], carrier)
    assert reload(d.id).provider_ref == "biz-from-before-the-crash"  # looked up, not resent
    assert carrier.submitted == []


def test_a_publish_lost_after_commit_is_republished_by_the_sweep(sms_setup, monkeypatch):
    monkeypatch.setattr(publish, "_send", lambda *a, **k: False)  # the broker was down
    sms_only()
    monkeypatch.undo()
    assert published("sms") == 0
    assert sweep(stale_after=60).republished_deliveries == 0  # not stale yet: left alone
    assert sweep(stale_after=0).republished_deliveries == 1
    assert published("sms") == 1
    # re-published deliveries are touched: the next sweep leaves them for another interval
    assert sweep(stale_after=60).republished_deliveries == 0


def test_a_message_whose_last_advance_was_lost_is_finished_by_the_sweep(sms_setup):
    d = sms_only()
    # the delivery report was stored, but the advance after it never ran (database went away)
    with transaction() as s:
        s.execute(update(Delivery).where(Delivery.id == d.id).values(state="delivered"))
        s.execute(
            update(Message)
            .where(Message.id == d.message_id)
            .values(created_at=utcnow() - timedelta(minutes=5))
        )
    assert sweep().overdue_messages == 1
    with transaction() as s:
        message = s.get(Message, d.message_id)
        assert message is not None and message.state == "delivered"
    assert sweep().overdue_messages == 0


def test_the_walk_for_lost_finishes_looks_at_a_bounded_stretch_each_sweep(sms_setup, monkeypatch):
    """Under a broadcast a million messages stay accepted, each with an open delivery: every
    sweep looks at the next few of them, and the walk still reaches every message."""
    from notifier.pipeline import sweep as sweep_module

    monkeypatch.setattr(sweep_module, "UNFINISHED_SCAN", 2)
    monkeypatch.setattr(sweep_module, "_unfinished_after", None)
    in_flight = [sms_only() for _ in range(4)]  # queued: open deliveries
    lost = sms_only()
    old = utcnow() - timedelta(minutes=5)
    with transaction() as s:
        s.execute(update(Delivery).where(Delivery.id == lost.id).values(state="delivered"))
        for seconds, d in enumerate([*in_flight, lost]):  # the lost one comes last in the walk
            s.execute(
                update(Message)
                .where(Message.id == d.message_id)
                .values(created_at=old + timedelta(seconds=seconds))
            )
    assert [sweep().overdue_messages for _ in range(4)] == [0, 0, 1, 0]
    with transaction() as s:
        found = {i: state for i, state in s.execute(select(Message.id, Message.state))}
    assert found[lost.message_id] == "delivered"
    assert {found[d.message_id] for d in in_flight} == {"accepted"}


def test_the_sweep_leaves_a_campaign_backlog_alone_but_not_lost_codes(migrated):
    """Stale queued bulk deliveries are re-published only once their lane's queue is empty
    (a broadcast's backlog still reaches them); transactional ones always."""
    producer.bind_device("ann", "apns", "ab" * 32)
    promo = producer.send(
        "ann", policy="push_only", push={"body": "sale"}, message_class="promotional"
    )
    code = producer.send("ann", policy="push_only", push={"body": "code"})
    assert (published("push_bulk"), published("push")) == (1, 1)
    # both tasks still wait in their queues: only the transactional one is sent again
    assert sweep(stale_after=0).republished_deliveries == 1
    assert (published("push_bulk"), published("push")) == (1, 2)
    # the campaign's queue drained without reaching the delivery: its task was lost
    for task in get_settings().broker_folder.glob("*.push_bulk.msg"):
        task.unlink()
    assert sweep(stale_after=0).republished_deliveries == 2
    assert (published("push_bulk"), published("push")) == (1, 3)
    with transaction() as s:
        queued = s.scalars(select(Delivery.message_id).where(Delivery.state == "queued")).all()
    assert sorted(queued) == sorted([promo, code])


def test_the_sweep_says_once_when_the_server_will_not_vacuum(migrated, caplog, monkeypatch):
    import logging

    from sqlalchemy import text

    from notifier.pipeline import sweep as sweep_module
    from notifier.store.db import is_postgres

    monkeypatch.setattr(sweep_module, "_server_checked", False)
    with caplog.at_level(logging.WARNING, logger="notifier.pipeline.sweep"):
        sweep()
        sweep()
    warned = [r for r in caplog.records if "autovacuum is off" in r.getMessage()]
    with transaction() as s:
        off = is_postgres(s) and s.execute(text("SHOW autovacuum")).scalar() == "off"
    assert len(warned) == (1 if off else 0)
