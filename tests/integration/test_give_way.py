"""Bulk lanes give way while transactional tasks wait in the broker, for a bounded time."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from config.settings import get_settings
from notifier import autogroup, transactional_seen
from notifier.give_way import give_way
from notifier.queue_depth import queue_depths
from tests.services import REDIS_URL


@pytest.fixture
def on_redis(env: pytest.MonkeyPatch, redis_prefix: str) -> Iterator[redis.Redis]:
    env.setenv("NOTIFIER_BROKER_URL", REDIS_URL)
    env.setenv("NOTIFIER_BROKER_KEY_PREFIX", redis_prefix)
    env.setenv("NOTIFIER_BULK_GIVE_WAY_MAX_SECONDS", "1.5")
    get_settings.cache_clear()
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def test_nothing_waiting_costs_no_wait(on_redis):
    assert give_way("push_bulk") == 0.0


def test_a_bulk_batch_waits_until_the_transactional_queue_drains(on_redis, redis_prefix):
    on_redis.rpush(f"{redis_prefix}push", b"a one-time code")
    assert queue_depths(["push", "push_bulk"]) == {"push": 1, "push_bulk": 0}

    def drain() -> None:
        time.sleep(0.3)
        on_redis.delete(f"{redis_prefix}push")

    threading.Thread(target=drain).start()
    waited = give_way("push_bulk")
    assert 0.25 < waited < 1.0


def test_a_campaign_always_moves_waits_are_capped(on_redis, redis_prefix):
    on_redis.rpush(f"{redis_prefix}sms", b"a transactional sms that nobody takes")
    started = time.monotonic()
    waited = give_way("sms_bulk")
    assert 1.5 <= waited < 1.8
    assert time.monotonic() - started < 2.0


def test_filesystem_broker_and_switched_off(env, tmp_path):
    env.setenv("NOTIFIER_HOME", str(tmp_path))
    env.setenv("NOTIFIER_BULK_GIVE_WAY_MAX_SECONDS", "0.2")
    folder = get_settings().broker_folder
    folder.mkdir(parents=True)
    (folder / "0001.push.msg").write_text("{}")
    assert 0.2 <= give_way("push_bulk") < 0.5
    env.setenv("NOTIFIER_BULK_GIVE_WAY_MAX_SECONDS", "0")
    get_settings.cache_clear()
    assert give_way("push_bulk") == 0.0


def test_an_unreadable_broker_never_holds_a_batch(env):
    env.setenv("NOTIFIER_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    assert give_way("push_bulk") == 0.0
    with pytest.raises(ValueError, match="not amqp"):
        queue_depths(["push"])


@pytest.fixture
def shares(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """What give_way asked of the autogroup (yield or not), in order."""
    asked: list[bool] = []
    monkeypatch.setattr(autogroup, "can_yield", lambda: True)  # as a niced bulk worker
    monkeypatch.setattr(autogroup, "yield_share", asked.append)
    transactional_seen.forget()
    yield asked
    transactional_seen.forget()


def test_a_bulk_lane_yields_while_transactional_work_is_about(on_redis, redis_prefix, shares):
    give_way("push_bulk")
    transactional_seen.mark()  # a one-time code's task ran
    ttl = on_redis.pttl(f"{redis_prefix}{transactional_seen.KEY}")
    assert 0 < ttl <= transactional_seen.HOLD_SECONDS * 1000
    give_way("sms_bulk")
    on_redis.delete(f"{redis_prefix}{transactional_seen.KEY}")  # as when the mark expires
    give_way("push_bulk")
    assert shares == [False, True, False]


def test_the_mark_is_written_a_few_times_a_second_at_most(on_redis, redis_prefix, shares):
    key = f"{redis_prefix}{transactional_seen.KEY}"
    transactional_seen.mark()
    on_redis.delete(key)
    transactional_seen.mark()  # within HOLD_SECONDS / 4 of the last: not written again
    assert on_redis.exists(key) == 0


def test_the_mark_on_the_filesystem_broker_and_a_broker_that_cannot_tell(env, tmp_path, shares):
    env.setenv("NOTIFIER_HOME", str(tmp_path))
    get_settings().broker_folder.mkdir(parents=True)
    give_way("push_bulk")
    transactional_seen.mark()
    give_way("push_bulk")
    env.setenv("NOTIFIER_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    get_settings.cache_clear()
    transactional_seen.forget()
    transactional_seen.mark()  # nowhere to write it: no error
    give_way("push_bulk")  # cannot tell: yields, as the worker's nice asks
    assert shares == [False, True, True]


def test_a_worker_at_nice_0_never_reads_the_mark(on_redis, monkeypatch: pytest.MonkeyPatch):
    """The demo's workers and any run without nice: no round trip for a share never changed."""

    def read() -> bool:
        raise AssertionError("read the mark")

    monkeypatch.setattr(transactional_seen, "recent", read)
    monkeypatch.setattr(os, "nice", lambda _increment: 0)
    assert give_way("push_bulk") == 0.0


@pytest.mark.parametrize("bulk", [True, False])
def test_a_send_task_gives_way_on_the_bulk_lane_and_marks_on_the_other(
    monkeypatch: pytest.MonkeyPatch, bulk: bool
):
    """workers._task.taking_turns, around each send task's batch: give way before a bulk
    batch; leave the mark after a transactional one, and only once it went through."""
    from workers import _task

    calls: list[str] = []
    monkeypatch.setattr(_task, "on_bulk_lane", lambda: bulk)
    monkeypatch.setattr(_task, "give_way", lambda lane: calls.append(f"give_way {lane}"))
    monkeypatch.setattr(transactional_seen, "mark", lambda: calls.append("mark"))
    with _task.taking_turns("push_bulk"):
        calls.append("send")
    with pytest.raises(RuntimeError), _task.taking_turns("push_bulk"):
        raise RuntimeError("the batch failed")
    if bulk:
        assert calls == ["give_way push_bulk", "send", "give_way push_bulk"]
    else:
        assert calls == ["send", "mark"]
