"""The deliveries' (state, updated_at) index holds only the states looked up by age

Three lookups go by a delivery's state and age: the sweep's (queued rows nobody picked up,
claims that outlived their lease, SMS waiting for a report) and a replay's (failed, rate
limited, undelivered, unconfirmed, cancelled). A broadcast delivery is written in four states
(queued, sending, sent, acked), and an update that changes the state is never HOT, so each
version added an entry here; the sent and acked ones, half of them and most of the index, no
lookup reads. A forced replay of what already reached a provider (sent, acked, delivered)
walks the table instead: an operator's rare command.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

LOOKED_UP = sa.text(
    "state IN ('queued', 'sending', 'submitted', 'failed', 'rate_limited', 'undelivered',"
    " 'unconfirmed', 'cancelled', 'expired')"
)


def upgrade() -> None:
    op.drop_index("ix_deliveries_state_updated", "deliveries")
    op.create_index(
        "ix_deliveries_state_updated",
        "deliveries",
        ["state", "updated_at"],
        postgresql_where=LOOKED_UP,
        sqlite_where=LOOKED_UP,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_state_updated", "deliveries")
    op.create_index("ix_deliveries_state_updated", "deliveries", ["state", "updated_at"])
