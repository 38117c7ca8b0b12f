"""store.sql: UUID lists travel to PostgreSQL as one array literal; state names are written
out where a partial index depends on them."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.dialects import postgresql

from notifier.store.models import Delivery, Message
from notifier.store.sql import MESSAGE_STATES, among, in_states, uuid_array


def test_uuids_and_their_strings_make_one_literal_of_hex_digits():
    a, b = uuid.uuid4(), uuid.uuid4()
    assert uuid_array([a, str(b)]) == "{" + a.hex + "," + b.hex + "}"
    assert uuid_array([]) == "{}"


def test_a_string_that_is_no_uuid_is_refused_before_it_reaches_the_sql():
    # Spliced in as it is, "a,b" would become two array elements.
    with pytest.raises(ValueError):
        uuid_array([f"{uuid.uuid4()},{uuid.uuid4()}"])


class _PostgresSession:
    """What among() asks of a session: the dialect it speaks (no connection is made)."""

    engine = create_engine("postgresql+psycopg://", module=psycopg)

    def get_bind(self) -> Any:
        return self.engine


def test_the_literal_is_an_untyped_parameter_cast_to_uuid_array():
    # Bound as varchar, the cast is an expression PostgreSQL evaluates per row of a scan:
    # every lock of a 20,000-recipient broadcast's batch then took seconds.
    stmt = select(Delivery.id).where(among(_PostgresSession(), Delivery.id, [uuid.uuid4()]))  # type: ignore[arg-type]
    rendered = str(stmt.compile(_PostgresSession.engine))
    assert "= ANY (CAST(%(param_1)s AS UUID[]))" in rendered


def test_states_are_written_into_the_statement_and_only_known_ones() -> None:
    clause = in_states(Delivery.state, ["queued", "sending"])
    sql = str(clause.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    # a generic plan of a prepared statement sees the names: the partial index matches
    assert sql == "deliveries.state IN ('queued', 'sending')"
    with pytest.raises(ValueError, match="not known states"):
        in_states(Delivery.state, ["queued'; DROP TABLE deliveries; --"])
    # a message's states are their own: a delivery state is refused for them, and back
    assert "'accepted'" in str(in_states(Message.state, ["accepted"], MESSAGE_STATES))
    with pytest.raises(ValueError, match="not known states"):
        in_states(Message.state, ["queued"], MESSAGE_STATES)
    with pytest.raises(ValueError, match="not known states"):
        in_states(Delivery.state, ["accepted"])
