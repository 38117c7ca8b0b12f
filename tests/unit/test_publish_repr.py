"""How a batch task's arguments read in logs and Flower: its size and first ids."""

from __future__ import annotations

from notifier.pipeline.publish import ids_repr


def test_a_batch_shows_its_first_ids_and_its_size() -> None:
    ids = [f"id-{i}" for i in range(1000)]
    assert ids_repr(ids) == "[['id-0', 'id-1', … 1000 ids]]"


def test_a_small_batch_shows_all_its_ids() -> None:
    assert ids_repr(["a"]) == "[['a']]"
    assert ids_repr(["a", "b"]) == "[['a', 'b']]"
