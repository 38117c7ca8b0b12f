"""Row ids grow with time, so bulk-written rows land on the rightmost pages of their indexes."""

from __future__ import annotations

import uuid

from notifier.store.ids import new_id


def test_ids_are_version_7_stdlib_uuids() -> None:
    made = new_id()
    assert isinstance(made, uuid.UUID)
    assert made.version == 7
    assert made.variant == uuid.RFC_4122


def test_ids_made_one_after_another_increase_and_never_repeat() -> None:
    made = [new_id() for _ in range(10_000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
