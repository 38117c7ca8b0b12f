"""The mocks' callback sender: every item goes out once it is due, earliest first."""

from __future__ import annotations

import threading
import time
from typing import Any

from notifier.mock.fleet import Callbacks


class Captured(Callbacks):
    """Records each batch and when it went out instead of posting it."""

    def __init__(self) -> None:
        self.posted: list[tuple[float, list[Any]]] = []
        self.arrived = threading.Event()
        super().__init__("http://127.0.0.1:9/unused", "key", lambda items: items)

    def _post(self, batch: list[tuple[Any, int]]) -> None:
        self.posted.append((time.monotonic(), [item for item, _ in batch]))
        self.arrived.set()


def wait_for(callbacks: Captured, n: int, timeout: float = 5.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while sum(len(b) for _, b in callbacks.posted) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return [item for _, batch in callbacks.posted for item in batch]


def test_an_item_due_sooner_than_the_one_waited_for_is_not_held_back():
    callbacks = Captured()
    start = time.monotonic()
    callbacks.later(30.0, "late")  # the sender now sleeps until this one is due
    callbacks.later(0.05, "soon")
    assert wait_for(callbacks, 1) == ["soon"]
    assert callbacks.posted[0][0] - start < 2.0


def test_items_due_after_the_head_all_go_out_in_due_order():
    callbacks = Captured()
    for i in range(50):
        callbacks.later(0.05 + i * 0.001, i)
    assert wait_for(callbacks, 50) == list(range(50))
