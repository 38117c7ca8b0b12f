"""Task arguments arrive as JSON strings; turn them back into ids."""

from __future__ import annotations

import uuid
from collections.abc import Sequence


def parse_ids(raw: Sequence[str]) -> list[uuid.UUID]:
    return [uuid.UUID(value) for value in raw]
