"""The HTTP API fuzzed from its own OpenAPI schema (schemathesis): never a 5xx or an unhandled
exception, and every 4xx answers in our error shape, naming the problem."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from notifier.api.app import create_app
from notifier.store import apikeys

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@schemathesis.check
def names_the_problem(ctx: Any, response: Any, case: Any) -> None:
    if 400 <= response.status_code < 500:
        error = response.json().get("error") if response.content else None
        assert isinstance(error, dict) and error.get("message"), response.text


@pytest.fixture
def db_url(pg_url: str) -> str:
    """PostgreSQL only: it is the stricter of the two (NUL bytes, lengths, types)."""
    return pg_url


@pytest.fixture
def admin_key(migrated: str) -> str:
    return apikeys.create_key("fuzz", ["admin"])


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_on_any_input(case: Any, admin_key: str) -> None:
    case.call_and_validate(
        headers={"authorization": f"Bearer {admin_key}"},
        checks=[not_a_server_error, names_the_problem],
    )
