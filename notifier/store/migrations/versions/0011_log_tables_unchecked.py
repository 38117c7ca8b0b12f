"""Events and attempts keep their parent's id without a foreign-key check

Events (a message's timeline) and attempts (each provider call of a delivery) are logs: a row
is written only by the transaction that inserted or locked its parent, never updated, and no
message or delivery is ever deleted. Their foreign keys checked nothing our writes could break,
yet each inserted row ran the check's lookup (`SELECT 1 FROM messages WHERE id = $1 FOR KEY
SHARE`) through a per-row trigger: four events and one attempt per broadcast delivery, ~17 µs
of PostgreSQL CPU per delivery (127-131 → 111-113 µs on a 20,000-recipient broadcast), 13 % of
the database's share. The parent tables keep their own foreign keys (deliveries to messages and
devices, messages to users), where a row can be written apart from its parent.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# 0001 left the foreign keys unnamed: PostgreSQL named them so, and SQLite's reflection (batch
# mode copies the table) is told to call them the same.
NAMING = {"fk": "%(table_name)s_%(column_0_name)s_fkey"}
CHECKS = (("events", "message_id", "messages"), ("attempts", "delivery_id", "deliveries"))


def upgrade() -> None:
    for table, column, _ in CHECKS:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.drop_constraint(f"{table}_{column}_fkey", type_="foreignkey")


def downgrade() -> None:
    for table, column, parent in CHECKS:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.create_foreign_key(f"{table}_{column}_fkey", parent, [column], ["id"])
