"""The garbage collector's settings for long-running processes (workers, API)."""

from __future__ import annotations

import gc

# A batch of 500 deliveries allocates tens of thousands of short-lived containers (rows,
# dicts, outcomes): at CPython's default of 700 allocations per young collection the
# collector ran ~200 times a broadcast in each push process, and its rare full collections
# walked every object imported at start-up (~130,000, ~70 ms each).
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Call once a process has imported and set up what it keeps for its lifetime: those
    objects move out of the collector's sight (gc.freeze), and young collections run less
    often. Cyclic garbage is still collected, only in larger steps."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
