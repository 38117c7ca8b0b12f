from datetime import UTC, datetime, timedelta

from notifier.domain.frequency import Limits, PastSend, window_hit

NOW = datetime(2026, 3, 1, 10, 30, 20, tzinfo=UTC)
LIMITS = Limits()


def code(minutes_ago: float, signature: str = "Bank") -> PastSend:
    return PastSend(signature, "verification", NOW - timedelta(minutes=minutes_ago))


def test_one_code_per_minute_clock_aligned():
    assert window_hit("verification", "Bank", NOW, [code(0.2)], LIMITS) == (
        "verification: 1 per minute per number and signature"
    )
    # 10:29:50 was in the previous clock minute: allowed at 10:30:20
    assert window_hit("verification", "Bank", NOW, [code(0.5)], LIMITS) is None


def test_five_per_clock_hour():
    sent = [code(m) for m in (2, 5, 9, 14, 20)]
    assert window_hit("verification", "Bank", NOW, sent, LIMITS) == (
        "verification: 5 per hour per number and signature"
    )
    earlier_hour = [code(m) for m in (31, 35, 40, 45, 50)]  # all before 10:00
    assert window_hit("verification", "Bank", NOW, earlier_hour, LIMITS) is None


def test_ten_per_rolling_day():
    sent = [code(60 * h + 2) for h in range(1, 11)]
    assert "10 per 24 hours" in (window_hit("verification", "Bank", NOW, sent, LIMITS) or "")
    old = [code(60 * 24 + 5)] * 20
    assert window_hit("verification", "Bank", NOW, old, LIMITS) is None


def test_limits_are_per_signature():
    assert window_hit("verification", "Shop", NOW, [code(0.1, "Bank")], LIMITS) is None


def test_other_kinds_fifty_per_day_per_number():
    notices = [PastSend("Bank", "notification", NOW - timedelta(minutes=i)) for i in range(50)]
    assert window_hit("notification", "Shop", NOW, notices, LIMITS) == "50 per 24 hours per number"
    assert window_hit("notification", "Shop", NOW, notices[:49], LIMITS) is None
    assert window_hit("verification", "Bank", NOW, notices, LIMITS) is None


def test_configured_limits():
    assert (
        window_hit("verification", "Bank", NOW, [code(0.1)], Limits(verification_minute=2)) is None
    )
