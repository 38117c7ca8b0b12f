"""With Redis away, callers that only pace themselves by queue depths get None, and the log
gets one warning a minute, not one per task."""

from __future__ import annotations

import logging

import pytest

from notifier import queue_depth


@pytest.fixture
def redis_away(env):
    # Nothing listens on port 1: every read is refused at once.
    env.setenv("NOTIFIER_BROKER_URL", "redis://127.0.0.1:1/0")
    queue_depth.client_for.cache_clear()
    env.setattr(queue_depth._Unreadable, "warned_at", None)
    env.setattr(queue_depth._Unreadable, "failures", 0)
    yield
    queue_depth.client_for.cache_clear()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_unreadable_depths_are_none_and_warned_once_a_minute(redis_away, caplog, env):
    caplog.set_level(logging.INFO, logger="notifier.queue_depth")
    for _ in range(5):
        assert queue_depth.depths_if_known(["push"]) is None
    assert len(_warnings(caplog)) == 1
    assert "failed reads since the last warning: 1" in _warnings(caplog)[0]
    env.setattr(queue_depth, "WARN_EVERY_SECONDS", 0.0)
    assert queue_depth.depths_if_known(["push"]) is None
    assert len(_warnings(caplog)) == 2
    assert "failed reads since the last warning: 5" in _warnings(caplog)[1]
