"""Row ids: time-ordered UUIDs (version 7, RFC 9562), for the rows written in bulk.

Every index keyed by a message or delivery id (the primary keys, deliveries.message_id,
events.message_id, attempts.delivery_id) takes an entry per row version. Random ids (version 4)
put each entry on a random leaf page, so a broadcast touches every page of every such index and
outgrows memory long before a million recipients; ids that grow with time land on the few
rightmost pages, which stay hot. Measured on a 20,000-recipient broadcast: PostgreSQL CPU per
delivery 159-179.5 → 137-140 µs (two alternating pairs). uuid_utils makes them in Rust
(0.6 µs, against 1.4 µs for uuid4) and keeps them increasing within a millisecond.
"""

from __future__ import annotations

from uuid_utils.compat import uuid7 as new_id

__all__ = ["new_id"]
