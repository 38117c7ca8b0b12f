"""A task of a transactional lane tops its batch up from that lane's ready deliveries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from config.settings import get_settings
from notifier.domain import states
from notifier.pipeline import batching
from notifier.pipeline.sms import send_sms
from notifier.store import claims, repo
from notifier.store.db import transaction
from notifier.store.models import Delivery
from tests.helpers import row_held
from tests.integration.test_sms_stage import (
    CarrierDouble,
    reload,
    setup,  # noqa: F401 (the catalogue, bob's phone)
    sms_only,
)

pytestmark = pytest.mark.usefixtures("setup")


def _notes(n: int) -> list[Delivery]:
    return [sms_only("NOTE", {"amount": str(i)}) for i in range(n)]


def test_first_task_sends_the_lane_backlog_and_the_rest_find_nothing():
    notes = _notes(4)
    promo = sms_only("PROMO")  # sms_bulk: never taken by a transactional top-up
    carrier = CarrierDouble()
    assert send_sms([notes[0].id], carrier, lane="sms") == 4
    assert {s.out_id for s in carrier.submitted} == {str(d.id) for d in notes}
    for d in notes[1:]:
        assert send_sms([d.id], carrier, lane="sms") == 0  # its task arrives: nothing to claim
    assert len(carrier.submitted) == 4
    assert reload(promo.id).state == states.QUEUED


def test_top_up_is_bounded_and_bulk_lanes_take_only_their_own(env):
    env.setenv("NOTIFIER_TRANSACTIONAL_BATCH_MAX", "3")
    env.setenv("NOTIFIER_SMS_QUIET_HOURS", "00:00-00:00")
    get_settings.cache_clear()
    notes = _notes(5)
    carrier = CarrierDouble()
    assert send_sms([notes[4].id], carrier, lane="sms") == 3  # its own and the two oldest
    assert {s.out_id for s in carrier.submitted} == {str(notes[i].id) for i in (0, 1, 4)}
    promos = [sms_only("PROMO") for _ in range(2)]
    assert send_sms([promos[1].id], carrier, lane="sms_bulk") == 1
    assert reload(promos[0].id).state == states.QUEUED


def test_retries_and_deferrals_wait_for_their_time():
    notes = _notes(3)
    later = repo.utcnow() + timedelta(minutes=5)
    with transaction() as s:
        s.execute(update(Delivery).where(Delivery.id == notes[1].id).values(next_attempt_at=later))
    assert send_sms([notes[2].id], CarrierDouble(), lane="sms") == 2
    assert reload(notes[1].id).state == states.QUEUED


# Row locks are PostgreSQL's; SQLite serialises whole transactions.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_top_up_skips_rows_another_claim_holds_without_waiting():
    notes = _notes(3)
    with row_held(notes[0].id):
        with transaction() as s:
            claimed, _ = claims.claim_queued(s, [notes[2].id], claims.TopUp("sms", 10))
        assert {d.id for d in claimed} == {notes[1].id, notes[2].id}
    assert reload(notes[0].id).state == states.QUEUED


def test_no_top_up_while_no_task_waits_in_the_lane(monkeypatch: pytest.MonkeyPatch):
    """Every queued delivery has its task taken (or held) by a worker: nothing to take."""
    notes = _notes(3)
    monkeypatch.setattr(batching, "depths_if_known", lambda lanes: dict.fromkeys(lanes, 0))
    assert send_sms([notes[2].id], CarrierDouble(), lane="sms") == 1
    assert reload(notes[0].id).state == reload(notes[1].id).state == states.QUEUED
    # a broker whose depths cannot be read: the top-up looks, as before
    monkeypatch.setattr(batching, "depths_if_known", lambda lanes: None)
    assert send_sms([notes[1].id], CarrierDouble(), lane="sms") == 2


def test_a_top_up_taken_in_the_claim_itself_does_not_look_at_the_queue(
    monkeypatch: pytest.MonkeyPatch,
):
    """The push claim on PostgreSQL tops up in its own statement (claims.top_up_is_free):
    reading the queue's depth first would only add a round trip to a one-time code's path."""

    def looked(lanes: list[str]) -> dict[str, int]:
        raise AssertionError(f"looked at the depth of {lanes}")

    monkeypatch.setattr(batching, "depths_if_known", looked)
    size = get_settings().transactional_batch_max
    assert batching.top_up("push", free=True) == claims.TopUp("push", size)
    assert batching.top_up("push_bulk", free=True) is None
