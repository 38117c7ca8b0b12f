"""SMS rules: template parameter limit, segment accounting, frequency counters, opt-outs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("sms_templates") as batch:
        batch.add_column(
            sa.Column("max_param_length", sa.Integer(), nullable=False, server_default="35")
        )
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("sms_encoding", sa.String(8), nullable=True))
        batch.add_column(sa.Column("sms_parts", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("sms_cost", sa.Numeric(12, 5), nullable=True))
    op.create_table(
        "sms_sends",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("signature", sa.String(64), nullable=False),
        sa.Column("template_code", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery_id"),
    )
    op.create_index("ix_sms_sends_phone_created", "sms_sends", ["phone", "created_at"])
    op.create_table(
        "sms_optouts",
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone"),
    )


def downgrade() -> None:
    op.drop_table("sms_optouts")
    op.drop_index("ix_sms_sends_phone_created", table_name="sms_sends")
    op.drop_table("sms_sends")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("sms_cost")
        batch.drop_column("sms_parts")
        batch.drop_column("sms_encoding")
    with op.batch_alter_table("sms_templates") as batch:
        batch.drop_column("max_param_length")
