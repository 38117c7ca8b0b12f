"""A broadcast's fan-out stays a bounded number of deliveries ahead of its lane's pushes."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import REGISTRY

from config.settings import get_settings
from notifier import broadcasts, producer
from notifier.pipeline import fanout
from tests.integration.test_broadcasts import N, counts, seed
from tests.services import REDIS_URL


def lane_tasks() -> list[Path]:
    """The bulk lane's tasks in the filesystem broker's folder."""
    return list(get_settings().broker_folder.glob("*.push_bulk.msg"))


def waited(queue: str) -> float:
    seconds = REGISTRY.get_sample_value("notifier_fan_out_waited_seconds_total", {"lane": queue})
    return seconds or 0.0


@pytest.fixture
def paced(migrated: str, env: pytest.MonkeyPatch) -> uuid.UUID:
    """Batches of 100, at most 300 deliveries waiting in the lane, a broadcast to N users."""
    env.setenv("NOTIFIER_PUSH_CONCURRENCY", "100")
    env.setenv("NOTIFIER_BROADCAST_AHEAD_MAX", "300")
    get_settings.cache_clear()
    seed()
    return producer.send_broadcast({"all": True}, {"body": "hello"})


def test_a_fan_out_stops_writing_while_its_lane_holds_the_most_it_may(paced):
    before = waited("push_bulk")
    started = time.monotonic()
    # the first chunk is one batch (100), the next 200: three tasks, the lane is full
    assert not fanout.fan_out(paced, budget=0.3, size=200)
    assert time.monotonic() - started >= 0.3
    assert counts(paced) == (300, 300, 300)
    assert len(lane_tasks()) == 3
    assert broadcasts.progress(paced)["state"] == "fanning_out"
    assert 0 < waited("push_bulk") - before <= 0.3  # what was left of the slice
    # the pushes took the lane's tasks: the next slice writes until the lane is full again
    for task in lane_tasks():
        task.unlink()
    assert not fanout.fan_out(paced, budget=0.3, size=200)
    assert counts(paced)[0] == 700
    assert len(lane_tasks()) == 4


def test_a_fan_out_keeps_pace_with_the_lane_draining(paced):
    seen: list[int] = []
    done = threading.Event()

    def push_workers() -> None:
        while not done.is_set():
            tasks = lane_tasks()
            seen.append(len(tasks))
            for task in tasks[:1]:
                task.unlink()
            time.sleep(0.02)

    worker = threading.Thread(target=push_workers)
    worker.start()
    try:
        assert fanout.fan_out(paced, budget=30, size=200)
    finally:
        done.set()
        worker.join()
    assert counts(paced) == (N, N, N)
    # below the ceiling (at most 2 tasks of 100) and one chunk of 200 written on top
    assert max(seen) <= 4


def test_no_ceiling_writes_the_whole_audience_in_one_slice(paced, env):
    env.setenv("NOTIFIER_BROADCAST_AHEAD_MAX", "0")
    get_settings.cache_clear()
    assert fanout.fan_out(paced, budget=0.3, size=200)
    assert counts(paced) == (N, N, N)
    assert len(lane_tasks()) == N // 100


@pytest.fixture
def on_redis(env: pytest.MonkeyPatch, redis_prefix: str) -> Iterator[redis.Redis]:
    env.setenv("NOTIFIER_BROKER_URL", REDIS_URL)
    env.setenv("NOTIFIER_BROKER_KEY_PREFIX", redis_prefix)
    env.setenv("NOTIFIER_PUSH_CONCURRENCY", "1000")
    env.setenv("NOTIFIER_BROADCAST_AHEAD_MAX", "2000")
    get_settings.cache_clear()
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def test_room_is_read_from_the_redis_lane(on_redis, redis_prefix):
    on_redis.rpush(f"{redis_prefix}push_bulk", b"a batch")
    assert fanout.lane_has_room("push_bulk", within=0.2)
    on_redis.rpush(f"{redis_prefix}push_bulk", b"another batch")

    def drain() -> None:
        time.sleep(0.3)
        on_redis.lpop(f"{redis_prefix}push_bulk")

    threading.Thread(target=drain).start()
    started = time.monotonic()
    assert fanout.lane_has_room("push_bulk", within=5)
    assert 0.25 < time.monotonic() - started < 1.0


def test_a_full_lane_answers_no_room_once_the_time_given_is_spent(on_redis, redis_prefix):
    on_redis.rpush(f"{redis_prefix}push_bulk", b"a batch", b"another batch")
    started = time.monotonic()
    assert not fanout.lane_has_room("push_bulk", within=0.3)
    assert 0.3 <= time.monotonic() - started < 0.6


def test_an_unreadable_broker_never_stops_a_fan_out(env):
    env.setenv("NOTIFIER_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    env.setenv("NOTIFIER_BROADCAST_AHEAD_MAX", "1")
    get_settings.cache_clear()
    started = time.monotonic()
    assert fanout.lane_has_room("push_bulk", within=5)
    assert time.monotonic() - started < 0.1
