from datetime import UTC, datetime

import pytest

from notifier.domain.errors import InvalidInput
from notifier.domain.quiet_hours import parse_window, quiet_until, recipient_zone

WINDOW = parse_window("21:00-08:00")
SHANGHAI = "+8613800138000"  # UTC+8
NEW_YORK = "+12125550123"


def test_zone_from_the_number():
    assert str(recipient_zone(SHANGHAI)) == "Asia/Shanghai"
    assert str(recipient_zone(NEW_YORK)) == "America/New_York"


def test_evening_waits_until_next_morning_local():
    evening = datetime(2026, 1, 1, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai
    assert quiet_until(SHANGHAI, evening, WINDOW) == datetime(2026, 1, 2, 0, 0, tzinfo=UTC)


def test_early_morning_waits_until_eight_same_day():
    early = datetime(2026, 1, 1, 20, 0, tzinfo=UTC)  # 04:00 on Jan 2 in Shanghai
    assert quiet_until(SHANGHAI, early, WINDOW) == datetime(2026, 1, 2, 0, 0, tzinfo=UTC)


def test_daytime_is_not_quiet():
    assert quiet_until(SHANGHAI, datetime(2026, 1, 1, 3, 0, tzinfo=UTC), WINDOW) is None


def test_same_instant_differs_by_country():
    instant = datetime(2026, 1, 1, 14, 0, tzinfo=UTC)  # 22:00 Shanghai, 09:00 New York
    assert quiet_until(SHANGHAI, instant, WINDOW) is not None
    assert quiet_until(NEW_YORK, instant, WINDOW) is None


def test_window_within_a_day_and_disabled():
    assert quiet_until(
        SHANGHAI, datetime(2026, 1, 1, 5, 0, tzinfo=UTC), parse_window("12:00-14:00")
    )
    assert (
        quiet_until(SHANGHAI, datetime(2026, 1, 1, 14, 0, tzinfo=UTC), parse_window("00:00-00:00"))
        is None
    )


def test_bad_window_named():
    with pytest.raises(InvalidInput, match="sms_quiet_hours: must look like 21:00-08:00"):
        parse_window("nine to five")
