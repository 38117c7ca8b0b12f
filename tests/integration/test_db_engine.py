"""How notifier's PostgreSQL connections are set up."""

from __future__ import annotations

from sqlalchemy import text

from notifier.store.db import dispose_engine, engine_for


def test_postgres_plans_each_execution_for_its_parameters(pg_url: str) -> None:
    """A cached generic plan, costed while a table was small, kept scanning all of it as a
    broadcast grew the table (see make_engine); every pooled connection must plan anew."""
    try:
        with engine_for(pg_url).connect() as conn:
            assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
    finally:
        dispose_engine(pg_url)
