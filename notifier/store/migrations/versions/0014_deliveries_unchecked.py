"""Deliveries keep their message's and device's ids without a foreign-key check

A delivery is inserted only in the transaction that inserts its message (acceptance, a
broadcast's fan-out), with a device read in that transaction, and no message or device is
ever deleted (a device that goes away is marked invalid). The two checks verified nothing
these writes could break, yet each inserted row ran both lookups through per-row triggers
(`SELECT 1 FROM messages WHERE id = $1 FOR KEY SHARE`, the same on devices), and each lock
dirtied the parent's page: inserting 200,000 deliveries took PostgreSQL 12.2 µs a row with
the checks against 3.9 µs without (this machine), ~7 % of the database's CPU per broadcast
delivery. Messages keep theirs to users: a message is written apart from its user.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# 0001 left the foreign keys unnamed: PostgreSQL named them so, and SQLite's reflection (batch
# mode copies the table) is told to call them the same.
NAMING = {"fk": "%(table_name)s_%(column_0_name)s_fkey"}
CHECKS = (("message_id", "messages"), ("device_id", "devices"))


def upgrade() -> None:
    with op.batch_alter_table("deliveries", naming_convention=NAMING) as batch:
        for column, _ in CHECKS:
            batch.drop_constraint(f"deliveries_{column}_fkey", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("deliveries", naming_convention=NAMING) as batch:
        for column, parent in CHECKS:
            batch.create_foreign_key(f"deliveries_{column}_fkey", parent, [column], ["id"])
