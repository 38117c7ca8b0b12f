"""Deliveries remember their lane, so a transactional task can top its batch up from it

A task on the push or sms queue claims its own deliveries and then other ready ones of the same
lane, oldest first (repo.claim_queued); the partial index keeps that lookup off the queued rows
of a broadcast.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

QUEUED = sa.text("state = 'queued'")


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("lane", sa.String(16), nullable=True))
    # Promotional messages travel on the bulk lanes (MessageClass.bulk).
    op.execute(
        "UPDATE deliveries SET lane = channel || CASE WHEN (SELECT m.message_class FROM messages m"
        " WHERE m.id = deliveries.message_id) = 'promotional' THEN '_bulk' ELSE '' END"
    )
    op.create_index(
        "ix_deliveries_lane_queued",
        "deliveries",
        ["lane", "created_at"],
        postgresql_where=QUEUED,
        sqlite_where=QUEUED,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_lane_queued", "deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("lane")
