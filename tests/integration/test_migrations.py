from sqlalchemy import inspect

from notifier.store import migrate
from notifier.store.db import engine_for

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
