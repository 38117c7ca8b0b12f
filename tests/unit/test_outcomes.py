import random

from notifier.domain.outcomes import backoff_seconds


def test_backoff_stays_within_exponential_ceiling():
    rng = random.Random(1)
    for attempt in range(1, 8):
        ceiling = min(60.0, 1.0 * 2 ** (attempt - 1))
        samples = [backoff_seconds(attempt, 1.0, 60.0, rng=rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling / 2  # full jitter spreads over the whole range


def test_retry_after_is_a_floor():
    assert backoff_seconds(1, 1.0, 60.0, retry_after=30.0, rng=random.Random(1)) == 30.0
