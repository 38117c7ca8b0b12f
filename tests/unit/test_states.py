import uuid
from datetime import UTC, datetime, timedelta

from notifier.domain import states
from notifier.domain.policy import Policy, Step, Trigger, first_step, plan_of
from notifier.domain.states import DeliveryView, Progress, advance

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DUE_LATER = NOW + timedelta(seconds=30)
DUE_PAST = NOW - timedelta(seconds=1)
LIVES = NOW + timedelta(hours=1)
SUPPLEMENT = plan_of(Policy.SUPPLEMENT, 30)


def d(channel: str, state: str, step: int | None = None) -> DeliveryView:
    if step is None:
        step = 1 if state == states.STANDBY else 0
    return DeliveryView(uuid.uuid4(), channel, state, step)


def at(
    due: datetime | None,
    plan=SUPPLEMENT,
    step: int = 0,
    expires: datetime = LIVES,
    trigger: Trigger = Trigger.NOT_RECEIVED,
) -> Progress:
    return Progress(plan, step, due, expires, trigger)


def test_acked_push_cancels_standby_sms_and_finishes_delivered():
    push, sms = d("push", states.ACKED), d("sms", states.STANDBY)
    steps = advance([push, sms], at(DUE_LATER), NOW)
    assert steps.cancel_standby == [sms.id]
    assert steps.start == []
    assert steps.final_state == states.DELIVERED


def test_sent_push_before_deadline_waits():
    steps = advance([d("push", states.SENT), d("sms", states.STANDBY)], at(DUE_LATER), NOW)
    assert (steps.start, steps.cancel_standby, steps.final_state) == ([], [], None)
    assert steps.unconfirm_push == []


def test_deadline_passed_unconfirms_push_and_starts_sms():
    push, sms = d("push", states.SENT), d("sms", states.STANDBY)
    steps = advance([push, sms], at(DUE_PAST), NOW)
    assert steps.unconfirm_push == [push.id]
    assert steps.start == [sms.id]
    assert steps.next_step == 1
    assert steps.next_due_at == NOW + timedelta(seconds=30)
    assert steps.final_state is None  # the SMS is still to be sent


def test_deadline_withdraws_push_still_queued():
    queued, sms = d("push", states.QUEUED), d("sms", states.STANDBY)
    steps = advance([queued, sms], at(DUE_PAST), NOW)
    assert steps.withdraw == [queued.id]
    assert steps.start == [sms.id]


def test_every_push_failed_starts_sms_before_deadline():
    sms = d("sms", states.STANDBY)
    pushes = [d("push", states.FAILED), d("push", states.FAILED)]
    steps = advance([*pushes, sms], at(DUE_LATER), NOW)
    assert steps.start == [sms.id]


def test_one_push_still_pending_keeps_sms_in_standby():
    deliveries = [d("push", states.FAILED), d("push", states.SENDING), d("sms", states.STANDBY)]
    assert advance(deliveries, at(DUE_LATER), NOW).start == []


def test_concurrent_waits_for_both_channels():
    plan = plan_of(Policy.CONCURRENT, 30)
    steps = advance([d("push", states.ACKED), d("sms", states.SUBMITTED)], at(DUE_LATER, plan), NOW)
    assert steps.final_state is None
    steps = advance([d("push", states.ACKED), d("sms", states.DELIVERED)], at(DUE_LATER, plan), NOW)
    assert steps.final_state == states.DELIVERED


def test_push_only_without_ack_ends_unconfirmed():
    steps = advance([d("push", states.SENT)], at(DUE_PAST, plan_of(Policy.PUSH_ONLY, 30)), NOW)
    assert steps.final_state == states.UNCONFIRMED


def test_everything_failed_ends_failed():
    steps = advance([d("push", states.FAILED), d("sms", states.UNDELIVERED)], at(DUE_LATER), NOW)
    assert steps.final_state == states.FAILED


def test_sms_only_ends_with_its_report():
    steps = advance([d("sms", states.DELIVERED)], at(None, plan_of(Policy.SMS_ONLY, 30)), NOW)
    assert steps.final_state == states.DELIVERED


def test_no_deliveries_is_never_final():
    assert advance([], at(None), NOW).final_state is None


# --- triggers ---------------------------------------------------------------------------


def test_not_opened_arrival_alone_does_not_stop_the_sms():
    push, sms = d("push", states.ACKED), d("sms", states.STANDBY)
    waiting = advance([push, sms], at(DUE_LATER, trigger=Trigger.NOT_OPENED), NOW)
    assert (waiting.start, waiting.cancel_standby) == ([], [])  # may still be opened
    due = advance([push, sms], at(DUE_PAST, trigger=Trigger.NOT_OPENED), NOW)
    assert due.start == [sms.id]


def test_not_opened_open_cancels_the_sms():
    push, sms = d("push", states.OPENED), d("sms", states.STANDBY)
    steps = advance([push, sms], at(DUE_LATER, trigger=Trigger.NOT_OPENED), NOW)
    assert steps.cancel_standby == [sms.id]
    assert steps.final_state == states.DELIVERED


# --- chains -----------------------------------------------------------------------------

SMS_THEN_PUSH = plan_of(Policy.CHAIN, 30, [Step(("sms",), 60), Step(("push",), 20)])


def test_chain_sms_first_then_push_when_no_report_by_its_deadline():
    sms = d("sms", states.SUBMITTED, 0)
    push = d("push", states.STANDBY, 1)
    assert advance([sms, push], at(DUE_LATER, SMS_THEN_PUSH), NOW).start == []
    steps = advance([sms, push], at(DUE_PAST, SMS_THEN_PUSH), NOW)
    assert steps.start == [push.id]
    assert steps.next_due_at == NOW + timedelta(seconds=20)


def test_chain_delivered_sms_cancels_the_push_step():
    sms, push = d("sms", states.DELIVERED, 0), d("push", states.STANDBY, 1)
    steps = advance([sms, push], at(DUE_LATER, SMS_THEN_PUSH), NOW)
    assert steps.cancel_standby == [push.id]
    assert steps.final_state == states.DELIVERED


def test_undelivered_sms_moves_on_before_the_deadline():
    sms, push = d("sms", states.UNDELIVERED, 0), d("push", states.STANDBY, 1)
    assert advance([sms, push], at(DUE_LATER, SMS_THEN_PUSH), NOW).start == [push.id]


def test_first_step_skips_steps_without_targets():
    assert first_step(SUPPLEMENT, {"sms"}) == 1
    assert first_step(SUPPLEMENT, {"push", "sms"}) == 0
    assert first_step(plan_of(Policy.PUSH_ONLY, 30), {"sms"}) is None


# --- TTL --------------------------------------------------------------------------------


def test_ttl_expired_before_fallback_skips_the_sms_and_ends_expired():
    push, sms = d("push", states.SENT), d("sms", states.STANDBY)
    steps = advance([push, sms], at(DUE_PAST, expires=NOW), NOW)
    assert steps.expire_standby == [sms.id]
    assert steps.start == []
    assert steps.final_state == states.EXPIRED


def test_next_step_never_waits_past_the_ttl():
    push, sms = d("push", states.FAILED), d("sms", states.STANDBY)
    soon = NOW + timedelta(seconds=5)
    steps = advance([push, sms], at(DUE_LATER, expires=soon), NOW)
    assert steps.next_due_at == soon


def test_confirmation_wins_over_expiry():
    push, sms = d("push", states.ACKED), d("sms", states.STANDBY)
    steps = advance([push, sms], at(DUE_PAST, expires=NOW), NOW)
    assert steps.final_state == states.DELIVERED
