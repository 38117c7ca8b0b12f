"""Group commit of ack requests: concurrent requests share a transaction, each answered alone."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Sequence

import pytest

from notifier.api.ack_commit import AckCommits
from notifier.pipeline.ingest import AckGroup, IngestResult


class Recorder:
    """Records groups as ingest.record_ack_groups would be called; the first call waits for
    `release`, so that requests pile up behind it; a group of user "bad" fails its call."""

    def __init__(self) -> None:
        self.calls: list[list[str | None]] = []
        self.release = threading.Event()

    def __call__(self, groups: Sequence[AckGroup]) -> list[IngestResult]:
        if not self.calls:
            self.release.wait(5)
        self.calls.append([user for _, user in groups])
        if any(user == "bad" for _, user in groups):
            raise RuntimeError("database away")
        return [IngestResult(len(acks), 0) for acks, _ in groups]


def _group(user: str, n: int = 1) -> AckGroup:
    return ([(uuid.uuid4(), "received") for _ in range(n)], user)


async def _requests(commits: AckCommits, recorder: Recorder, users: list[str]) -> list[object]:
    first = asyncio.create_task(commits.submit(_group("first")))
    await asyncio.sleep(0.05)  # the first transaction is running
    rest = [asyncio.create_task(commits.submit(_group(u, 2))) for u in users]
    await asyncio.sleep(0.05)
    recorder.release.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def test_requests_arriving_during_a_transaction_share_the_next_one() -> None:
    recorder = Recorder()
    commits = AckCommits(recorder)
    answers = asyncio.run(_requests(commits, recorder, ["a", "b", "c"]))
    assert recorder.calls == [["first"], ["a", "b", "c"]]
    assert answers == [IngestResult(1, 0)] + [IngestResult(2, 0)] * 3
    assert commits.transactions == 2


def test_a_failed_shared_transaction_is_retried_one_by_one_and_fails_only_its_culprit() -> None:
    recorder = Recorder()
    commits = AckCommits(recorder)
    answers = asyncio.run(_requests(commits, recorder, ["a", "bad", "c"]))
    assert recorder.calls == [["first"], ["a", "bad", "c"], ["a"], ["bad"], ["c"]]
    assert answers[:2] == [IngestResult(1, 0), IngestResult(2, 0)]
    assert isinstance(answers[2], RuntimeError) and answers[3] == IngestResult(2, 0)


def test_a_group_holds_at_most_max_acks_receipts_but_always_one_request() -> None:
    recorder = Recorder()
    commits = AckCommits(recorder, max_acks=3)
    asyncio.run(_requests(commits, recorder, ["a", "b", "c"]))  # two receipts each
    assert recorder.calls == [["first"], ["a"], ["b"], ["c"]]
    big = AckCommits(Recorder(), max_acks=1)
    big.record.release.set()  # type: ignore[attr-defined]
    assert asyncio.run(big.submit(_group("x", 5))) == IngestResult(5, 0)


def test_an_idle_api_records_a_lone_request_at_once() -> None:
    recorder = Recorder()
    recorder.release.set()
    commits = AckCommits(recorder)

    async def lone() -> IngestResult:
        return await asyncio.wait_for(commits.submit(_group("a")), 1)

    assert asyncio.run(lone()) == IngestResult(1, 0)
    assert recorder.calls == [["a"]]


def test_nobody_waits_forever_when_the_loop_goes_away() -> None:
    recorder = Recorder()
    commits = AckCommits(recorder)

    async def cancelled() -> None:
        waiting = asyncio.create_task(commits.submit(_group("a")))
        await asyncio.sleep(0.05)
        assert commits._drainer is not None
        commits._drainer.cancel()
        with pytest.raises((RuntimeError, asyncio.CancelledError)):
            await waiting

    asyncio.run(cancelled())
    recorder.release.set()
