"""Alembic environment: the URL comes from the caller (notifier.store.migrate), never an ini."""

from __future__ import annotations

from alembic import context

from notifier.store.db import engine_for
from notifier.store.models import Base

config = context.config
url = config.attributes["database_url"]

with engine_for(url).connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
