"""Broadcasts: device attributes and user tags to segment on, the broadcast and its messages

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("app_version", sa.String(32), nullable=True))
        batch.add_column(sa.Column("locale", sa.String(16), nullable=True))
    op.create_table(
        "user_tags",
        sa.Column("user_id", sa.String(128), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "tag"),
    )
    op.create_index("ix_user_tags_tag", "user_tags", ["tag", "user_id"])
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("segment", sa.JSON(), nullable=False),
        sa.Column("message_class", sa.String(16), nullable=False),
        sa.Column("push_title", sa.Text(), nullable=True),
        sa.Column("push_body", sa.Text(), nullable=True),
        sa.Column("push_data", sa.JSON(), nullable=False),
        sa.Column("push_options", sa.JSON(), nullable=False),
        sa.Column("receipt_deadline_s", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("planned", sa.Integer(), nullable=False),
        sa.Column("enqueued", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("broadcast_id", sa.Uuid(), nullable=True))
        batch.create_index("ix_messages_broadcast", ["broadcast_id"])


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_broadcast")
        batch.drop_column("broadcast_id")
    op.drop_table("broadcasts")
    op.drop_index("ix_user_tags_tag", "user_tags")
    op.drop_table("user_tags")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("locale")
        batch.drop_column("app_version")
