"""A time-ordered id made by PostgreSQL itself, for rows a statement writes on its own

A broadcast's fan-out writes each chunk's messages and deliveries with one INSERT … SELECT
(store.fan_out_rows): the ids are then made by the server, and they must be ordered in time
as notifier.store.ids makes them (version 7, RFC 9562), or every index keyed by them takes
its entries on random pages. PostgreSQL 15 has no uuidv7() (it comes in 18): this is the same
layout, the first 48 bits the Unix time in milliseconds, the version 7, the rest random.
SQLite has no such path; its fan-out writes ids made in Python.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# gen_random_uuid() is a version 4 id (version bits 0100); its first six bytes are replaced by
# the time and bits 52 and 53 set (set_bit counts from the first byte's lowest bit): 0111.
UUID7 = """
CREATE OR REPLACE FUNCTION notifier_uuid7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(
                int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(UUID7)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS notifier_uuid7()")
