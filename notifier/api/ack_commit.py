"""Group commit for device receipts: concurrent ack requests share one transaction.

A device posts its own receipts, often one per request, and recording costs ~2 ms of CPU per
transaction here however few acks it carries (its statements, its round trips) against
~50 µs per ack in a batch. While one transaction runs, the requests that arrive wait for it
and then go together in the next one; a request that finds nothing running starts at once,
so an idle API adds no delay. Each request gets its own counts and is refused only for
itself: if a shared transaction fails, its requests are recorded one by one, and whichever
fails then raises to its own caller.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from notifier.pipeline.ingest import AckGroup, IngestResult

# Receipts per shared transaction at most (a request carries up to MAX_ACKS_PER_CALL itself):
# a bigger transaction holds more row locks for longer against the push workers' records.
MAX_GROUP_ACKS = 1000

Record = Callable[[Sequence[AckGroup]], list[IngestResult]]


@dataclass
class _Waiting:
    group: AckGroup
    answer: asyncio.Future[IngestResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class AckCommits:
    def __init__(self, record: Record, max_acks: int = MAX_GROUP_ACKS) -> None:
        self.record, self.max_acks = record, max_acks
        self._waiting: deque[_Waiting] = deque()
        self._drainer: asyncio.Task[None] | None = None
        self.transactions = 0  # how many transactions the groups took (tests, the curious)

    async def submit(self, group: AckGroup) -> IngestResult:
        """Record one request's receipts; returns once the transaction holding them commits."""
        waiting = _Waiting(group)
        self._waiting.append(waiting)
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        return await waiting.answer

    async def _drain(self) -> None:
        taken: list[_Waiting] = []
        try:
            while self._waiting:
                taken = self._take()
                self.transactions += 1
                try:
                    results = await run_in_threadpool(self.record, [w.group for w in taken])
                except Exception:
                    await self._one_by_one(taken)
                    continue
                for w, result in zip(taken, results, strict=True):
                    w.answer.set_result(result)
        finally:
            self._drainer = None
            # Only if the loop is going away (cancelled): nobody may wait forever.
            for w in [*taken, *self._waiting]:
                if not w.answer.done():
                    w.answer.set_exception(RuntimeError("ack recording stopped"))

    def _take(self) -> list[_Waiting]:
        """The oldest waiting requests, up to max_acks receipts (at least one request)."""
        taken: list[_Waiting] = []
        acks = 0
        while self._waiting:
            size = len(self._waiting[0].group[0])
            if taken and acks + size > self.max_acks:
                break
            taken.append(self._waiting.popleft())
            acks += size
        return taken

    async def _one_by_one(self, taken: list[_Waiting]) -> None:
        for w in taken:
            self.transactions += 1
            try:
                w.answer.set_result((await run_in_threadpool(self.record, [w.group]))[0])
            except Exception as exc:
                w.answer.set_exception(exc)
