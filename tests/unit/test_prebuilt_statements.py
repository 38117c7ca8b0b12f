"""The statements built once and run per ack batch stay Core statements.

SQLAlchemy annotates an ORM-enabled UPDATE anew on every execution, so a prebuilt one paid
for its cache key (~0.1 ms here) each time it ran: that is what prebuilding was meant to
save, on the path of every ack request and every decision.
"""

from __future__ import annotations

import pytest

from notifier.store import repo


@pytest.mark.parametrize("postgres", [True, False])
@pytest.mark.parametrize(
    "build",
    [
        lambda pg: repo._moving_prebuilt(pg, ("id",)),
        lambda pg: repo._moving_prebuilt(pg, ("id", "message_id")),
        repo._finishing,
    ],
)
def test_prebuilt_updates_are_core_statements(build, postgres):
    stmt = build(postgres)
    assert stmt._propagate_attrs.get("compile_state_plugin") != "orm"
    # and the cache key is computed once, then memoized on the statement
    assert stmt._generate_cache_key() is stmt._generate_cache_key()
