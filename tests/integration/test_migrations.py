import uuid

import pytest
from sqlalchemy import insert, inspect, text
from sqlalchemy.exc import IntegrityError

from notifier.store import migrate
from notifier.store.db import engine_for
from notifier.store.models import Message, User

TABLES = {
    "users",
    "devices",
    "messages",
    "deliveries",
    "attempts",
    "events",
    "sms_templates",
    "sms_signatures",
    "api_keys",
}


def test_same_migrations_up_and_down_on_each_database(db_url):
    migrate.upgrade(db_url)
    assert migrate.current_revision(db_url) == migrate.head_revision()
    assert set(inspect(engine_for(db_url)).get_table_names()) >= TABLES
    migrate.downgrade(db_url, "base")
    assert not TABLES & set(inspect(engine_for(db_url)).get_table_names())
    migrate.upgrade(db_url)
    assert migrate.current_revision(db_url) == migrate.head_revision()


def test_models_match_migrations(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from notifier.store.models import Base

    migrate.upgrade(db_url)
    with engine_for(db_url).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_idempotency_keys_stay_unique_in_their_partial_index(db_url):
    """0010 moved the key's uniqueness to an index of keyed rows only: a repeated key is
    still refused, and any number of messages without one are not."""
    migrate.upgrade(db_url)
    engine = engine_for(db_url)
    now = text("CURRENT_TIMESTAMP")
    row = {
        "user_id": "ann",
        "policy": "push_only",
        "state": "accepted",
        "push_data": {},
        "push_options": {},
        "sms_params": {},
        "receipt_deadline_s": 30,
        "expires_at": now,
        "created_at": now,
        "updated_at": now,
    }
    with engine.begin() as conn:
        conn.execute(insert(User).values(id="ann", created_at=now, updated_at=now))
        for _ in range(3):
            conn.execute(insert(Message).values(id=uuid.uuid4(), **row))
        conn.execute(insert(Message).values(id=uuid.uuid4(), idempotency_key="k1", **row))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(Message).values(id=uuid.uuid4(), idempotency_key="k1", **row))
