"""The garbage collector's settings for long-running processes (workers, API)."""

from __future__ import annotations

import gc

# A batch of 1,000 deliveries holds tens of thousands of containers (rows, dicts, requests,
# outcomes) alive at once. The young generation is collected when live containers grow by
# the threshold, so at CPython's default of 700 the collector ran ~200 times a broadcast in
# each push process, and its rare full collections walked every object imported at start-up
# (~130,000, ~70 ms each). At 10,000 a batch still crossed it every few hundred deliveries,
# and each collection walked the live batch (~4.7 ms a young collection in a push process,
# 4-5 % of its CPU). A batch never grows by 100,000, so the young collections now find the
# rare cycles between batches instead (the hot paths make none: peak RSS did not move).
YOUNG_THRESHOLD = 100_000


def settle() -> None:
    """Call once a process has imported and set up what it keeps for its lifetime: those
    objects move out of the collector's sight (gc.freeze), and young collections run less
    often. Cyclic garbage is still collected, only in larger steps."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
