"""Plans, triggers and classes: steps of a message, the step of each delivery, user-bound keys

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column(
                "message_class", sa.String(16), nullable=False, server_default="transactional"
            )
        )
        batch.add_column(
            sa.Column(
                "confirm_trigger", sa.String(16), nullable=False, server_default="not_received"
            )
        )
        batch.add_column(sa.Column("chain", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("step", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("about_device", sa.Uuid(), nullable=True))
        batch.create_index("ix_messages_state_created", ["state", "created_at"])
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("step", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("user_id", sa.String(128), nullable=True))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("bound_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE devices SET bound_at = created_at")
    # Before plans, a supplement's SMS was its second step.
    op.execute(
        "UPDATE deliveries SET step = 1 WHERE channel = 'sms' AND message_id IN "
        "(SELECT id FROM messages WHERE policy = 'supplement')"
    )
    op.execute(
        "UPDATE messages SET step = 1 WHERE policy = 'supplement' AND EXISTS "
        "(SELECT 1 FROM deliveries d WHERE d.message_id = messages.id AND d.channel = 'sms' "
        "AND d.state NOT IN ('standby', 'cancelled'))"
    )


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("bound_at")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("user_id")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("step")
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_state_created")
        for column in ("about_device", "step", "chain", "confirm_trigger", "message_class"):
            batch.drop_column(column)
