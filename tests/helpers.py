"""Small helpers shared by the test tiers."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from notifier import catalog


def approved_catalogue(signature: str, templates: dict[str, tuple[str, str]]) -> None:
    """Add and approve a signature and templates ({code: (kind, content)})."""
    catalog.add_signature(signature)
    catalog.review("signature", signature, approve=True)
    for code, (kind, content) in templates.items():
        catalog.add_template(code, kind, content)
        catalog.review("template", code, approve=True)


@contextmanager
def row_held(delivery_id: uuid.UUID) -> Iterator[None]:
    """Another transaction holds this delivery's row lock (as a claim in progress would) until
    the block ends."""
    from notifier.store import repo
    from notifier.store.db import transaction

    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with transaction() as s:
            repo.lock_deliveries(s, [delivery_id])
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        yield
    finally:
        release.set()
        holder.join()


def all_at_once(work: Callable[[int], None], n: int = 4) -> None:
    """Run work(0) … work(n - 1) in n threads started together; returns when all are done."""
    barrier = threading.Barrier(n)

    def run(k: int) -> None:
        barrier.wait()
        work(k)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
