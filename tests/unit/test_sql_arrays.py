"""UUID lists travel to PostgreSQL as one array literal (store.sql.uuid_array)."""

from __future__ import annotations

import uuid

import pytest

from notifier.store.sql import uuid_array


def test_uuids_and_their_strings_make_one_literal_of_hex_digits():
    a, b = uuid.uuid4(), uuid.uuid4()
    assert uuid_array([a, str(b)]) == "{" + a.hex + "," + b.hex + "}"
    assert uuid_array([]) == "{}"


def test_a_string_that_is_no_uuid_is_refused_before_it_reaches_the_sql():
    # Spliced in as it is, "a,b" would become two array elements.
    with pytest.raises(ValueError):
        uuid_array([f"{uuid.uuid4()},{uuid.uuid4()}"])
