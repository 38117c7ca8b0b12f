"""Two indexes leave out the versions no lookup reads: queued deliveries, delivered messages

Every update that changes a row's state is a non-HOT update, so the new version takes an
entry in each index whose predicate it meets (bench.stages --statements: index entries are
about three quarters of the database's CPU per delivery).

- ix_deliveries_state_updated held queued rows for the sweep's lookup of lost ones, which
  goes by lane since (ix_deliveries_lane_queued, pipeline.sweep._stale): every delivery
  written took an entry here that nothing read.
- ix_messages_state_created held every version of every message. A delivered message, the
  last version of most of them, is left out: the walk over accepted messages and a search
  by any other state still find theirs through it; a search for delivered messages with no
  user walks the table, as a search without a state always did.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

DELIVERIES_BEFORE = sa.text(
    "state IN ('queued', 'sending', 'submitted', 'failed', 'rate_limited', 'undelivered',"
    " 'unconfirmed', 'cancelled', 'expired')"
)
DELIVERIES_AFTER = sa.text(
    "state IN ('sending', 'submitted', 'failed', 'rate_limited', 'undelivered',"
    " 'unconfirmed', 'cancelled', 'expired')"
)
MESSAGES_AFTER = sa.text("state IN ('accepted', 'unconfirmed', 'failed', 'expired')")


def _recreate(index: str, table: str, where: sa.TextClause | None) -> None:
    """Build `index` on (state, then the row's age column) anew, partial on `where`."""
    age = "updated_at" if table == "deliveries" else "created_at"
    op.drop_index(index, table)
    op.create_index(index, table, ["state", age], postgresql_where=where, sqlite_where=where)


def upgrade() -> None:
    _recreate("ix_deliveries_state_updated", "deliveries", DELIVERIES_AFTER)
    _recreate("ix_messages_state_created", "messages", MESSAGES_AFTER)


def downgrade() -> None:
    _recreate("ix_deliveries_state_updated", "deliveries", DELIVERIES_BEFORE)
    _recreate("ix_messages_state_created", "messages", None)
