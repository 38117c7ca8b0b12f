"""Messages keep their user's id without a foreign-key check

Every message is written in a transaction that has read its user: acceptance refuses a user
it does not find (acceptance.accept), and a broadcast's fan-out makes one message per user of
the devices it reads, whose own key to users stands. No user is ever deleted. The check then
verified nothing these writes could break, yet it ran for every message a broadcast wrote: a
per-row trigger (`SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE`) whose lock dirtied the
user's page and wrote a WAL record of its own (bench.stages --statements: one Heap/LOCK record
per recipient in the fan-out). As migration 0014 did for deliveries; the fault suite checks
what the key would have (tests/e2e/scenarios.py, unattached rows).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# 0001 left the key unnamed: PostgreSQL named it so, and SQLite's reflection (batch mode
# copies the table) is told to call it the same.
NAMING = {"fk": "%(table_name)s_%(column_0_name)s_fkey"}


def upgrade() -> None:
    with op.batch_alter_table("messages", naming_convention=NAMING) as batch:
        batch.drop_constraint("messages_user_id_fkey", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("messages", naming_convention=NAMING) as batch:
        batch.create_foreign_key("messages_user_id_fkey", "users", ["user_id"], ["id"])
