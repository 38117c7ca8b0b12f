import uuid
from datetime import UTC, datetime, timedelta

from notifier.domain import states
from notifier.domain.states import DeliveryView, advance

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DUE_LATER = NOW + timedelta(seconds=30)
DUE_PAST = NOW - timedelta(seconds=1)


def d(channel: str, state: str) -> DeliveryView:
    return DeliveryView(uuid.uuid4(), channel, state)


def test_acked_push_cancels_standby_sms_and_finishes_delivered():
    push, sms = d("push", states.ACKED), d("sms", states.STANDBY)
    steps = advance([push, sms], DUE_LATER, NOW)
    assert steps.cancel_sms == sms.id
    assert steps.start_sms is None
    assert steps.final_state == states.DELIVERED


def test_sent_push_before_deadline_waits():
    steps = advance([d("push", states.SENT), d("sms", states.STANDBY)], DUE_LATER, NOW)
    assert (steps.start_sms, steps.cancel_sms, steps.final_state) == (None, None, None)
    assert steps.unconfirm_push == []


def test_deadline_passed_unconfirms_push_and_starts_sms():
    push, sms = d("push", states.SENT), d("sms", states.STANDBY)
    steps = advance([push, sms], DUE_PAST, NOW)
    assert steps.unconfirm_push == [push.id]
    assert steps.start_sms == sms.id
    assert steps.final_state is None  # the SMS is still to be sent


def test_deadline_withdraws_push_still_queued():
    queued, sms = d("push", states.QUEUED), d("sms", states.STANDBY)
    steps = advance([queued, sms], DUE_PAST, NOW)
    assert steps.cancel_push == [queued.id]
    assert steps.start_sms == sms.id


def test_every_push_failed_starts_sms_before_deadline():
    sms = d("sms", states.STANDBY)
    steps = advance([d("push", states.FAILED), d("push", states.FAILED), sms], DUE_LATER, NOW)
    assert steps.start_sms == sms.id


def test_one_push_still_pending_keeps_sms_in_standby():
    steps = advance(
        [d("push", states.FAILED), d("push", states.SENDING), d("sms", states.STANDBY)],
        DUE_LATER,
        NOW,
    )
    assert steps.start_sms is None


def test_concurrent_waits_for_both_channels():
    steps = advance([d("push", states.ACKED), d("sms", states.SUBMITTED)], DUE_LATER, NOW)
    assert steps.final_state is None
    steps = advance([d("push", states.ACKED), d("sms", states.DELIVERED)], DUE_LATER, NOW)
    assert steps.final_state == states.DELIVERED


def test_push_only_without_ack_ends_unconfirmed():
    steps = advance([d("push", states.SENT)], DUE_PAST, NOW)
    assert steps.final_state == states.UNCONFIRMED


def test_everything_failed_ends_failed():
    steps = advance([d("push", states.FAILED), d("sms", states.UNDELIVERED)], DUE_LATER, NOW)
    assert steps.final_state == states.FAILED


def test_sms_only_without_deadline():
    steps = advance([d("sms", states.DELIVERED)], None, NOW)
    assert steps.final_state == states.DELIVERED


def test_no_deliveries_is_never_final():
    assert advance([], None, NOW).final_state is None
