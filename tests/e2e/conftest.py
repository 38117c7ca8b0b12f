"""E2E: mocks, API and one Celery worker per queue as real processes, on PostgreSQL + Redis."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from config.settings import get_settings
from notifier import catalog
from notifier.demo.run import seed_catalogue
from notifier.demo.stack import DEFAULT_WORKERS, Stack, WorkerSpec
from notifier.providers.gateway import PushGateway, gateway_from_settings
from tests.services import REDIS_URL, fresh_pg_database, fresh_redis_prefix

FINAL = ("delivered", "unconfirmed", "failed", "expired")


@contextmanager
def pg_redis_stack(
    home: Path, overrides: dict[str, str], workers: Sequence[WorkerSpec] = DEFAULT_WORKERS
) -> Iterator[Stack]:
    """The whole system as processes on a fresh PostgreSQL database and Redis key prefix."""
    with fresh_pg_database() as db_url, fresh_redis_prefix() as prefix:
        base = {
            "NOTIFIER_DATABASE_URL": db_url,
            "NOTIFIER_BROKER_URL": REDIS_URL,
            "NOTIFIER_BROKER_KEY_PREFIX": prefix,
        }
        with Stack(home, {**base, **overrides}, workers) as running:
            yield running


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {
        # Reports missing from the webhook are polled after a second, not two minutes.
        "NOTIFIER_SMS_POLL_AFTER_SECONDS": "1",
        # Let the hour window (5 codes) be the one a burst of codes hits.
        "NOTIFIER_SMS_LIMIT_VERIFICATION_MINUTE": "100",
        # Quiet hours would make promotional tests depend on the time of day.
        "NOTIFIER_SMS_QUIET_HOURS": "00:00-00:00",
        "NOTIFIER_SMS_PRICES": "+86=0.045,*=0.05",
    }
    with pg_redis_stack(tmp_path_factory.mktemp("stack"), overrides) as running:
        seed_catalogue()
        for code, kind, content in (
            ("OTP", "verification", "Your login code is ${code}"),
            ("PROMO", "promotional", "Weekend offer: ${pct} off. Reply STOP to unsubscribe"),
        ):
            catalog.add_template(code, kind, content)
            catalog.review("template", code, approve=True)
        yield running


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def final_view(stack: Stack, message_id: str, timeout: float = 30.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        view: dict[str, Any] = stack.api("GET", f"/v1/messages/{message_id}").json()
        return view if view["state"] in FINAL else None

    return dict(wait_for(check, timeout, f"message {message_id} to finish"))


# --- mock providers alone (contract and fault tests run the push stage in-process) ---------


@pytest.fixture(scope="module")
def mocks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    overrides = {
        "NOTIFIER_MOCK_DEFAULT_BEHAVIOUR": "offline",
        "NOTIFIER_RETRY_BASE_SECONDS": "0.05",
        "NOTIFIER_RETRY_CAP_SECONDS": "0.5",
        "NOTIFIER_MAX_ATTEMPTS": "8",
    }
    stack = Stack(Path(tmp_path_factory.mktemp("contract")), overrides)
    stack.prepare()
    stack.start_servers(["apns", "fcm"])
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def gateway(mocks: Stack) -> Iterator[PushGateway]:
    for name in ("apns", "fcm"):
        set_faults(mocks, name, [])
        requests.delete(f"{mocks.url(name)}/_mock/received", timeout=5).raise_for_status()
    gw = gateway_from_settings(get_settings())
    yield gw
    gw.transport.close()


def set_faults(stack: Stack, mock: str, rules: list[dict[str, Any]]) -> None:
    stack.set_faults(mock, rules)


def token(platform: str) -> str:
    if platform == "apns":
        return secrets.token_hex(32)
    return f"{secrets.token_urlsafe(16)}:APA91b{secrets.token_urlsafe(100)}"
