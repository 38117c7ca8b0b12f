"""Environment → one frozen Settings object.

Every knob is a `NOTIFIER_*` variable; the defaults need no server at all (an SQLite file and
kombu's filesystem broker under `NOTIFIER_HOME`), so `notifier demo` runs on a bare machine and
the same code runs on PostgreSQL + Redis by changing two URLs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A NOTIFIER_* variable could not be parsed; the message names it."""


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


_PARSERS: dict[type | str, Callable[[str], Any]] = {
    "int": int,
    "float": float,
    "bool": _parse_bool,
    "str": str,
    "str | None": lambda raw: raw or None,
}


@dataclass(frozen=True)
class Settings:
    """Typed configuration; each field's env var is NOTIFIER_<FIELD NAME IN UPPER CASE>."""

    home: str = "var"
    database_url: str = ""
    broker_url: str = ""
    # Redis redelivers an unacked task after this many seconds; every countdown we use stays
    # well below it (receipt checks further out are found by the maintenance sweep instead).
    # Prefix for every broker key in Redis, so several deployments (or test runs) share a server.
    broker_key_prefix: str = ""
    broker_visibility_timeout: int = 3600
    max_countdown_seconds: int = 600
    sweep_interval_seconds: float = 5.0
    # A queued delivery untouched this long is published again (its task may have been lost
    # with a killed worker or a restarted broker); the claim makes a duplicate task harmless.
    republish_after_seconds: float = 30.0
    filesystem_broker_poll_seconds: float = 0.05

    api_url: str = "http://127.0.0.1:8000"
    # How long an API process trusts a live API key it has looked up (0: every request asks).
    api_key_cache_seconds: float = 5.0

    apns_url: str = "https://api.push.apple.com"
    apns_key_file: str | None = None
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""
    fcm_url: str = "https://fcm.googleapis.com"
    fcm_service_account_file: str | None = None
    # HTTP/2 streams in flight per worker process: a whole fan-out chunk (1,000), so a bulk
    # batch pays the provider's latency once (APNs grants ~1000 streams; libcurl keeps to what
    # a server grants). With half a chunk in flight a batch paid it twice: T30 / T0 0.80-1.01
    # (mean 0.89, ten runs) against 0.93-1.12 (six).
    push_concurrency: int = 1000
    push_timeout_seconds: float = 10.0
    # A task of a transactional lane (push, sms) tops its batch up with other ready deliveries
    # of that lane, up to this many in all: a backlog of one-message tasks drains as batches
    # (0: each task sends only its own deliveries). Also the most pushes a worker killed
    # mid-send can leave sent but unrecorded, to go again after the lease.
    transactional_batch_max: int = 20
    # Longest a bulk batch (push_bulk, sms_bulk) waits while transactional tasks wait in the
    # broker (notifier.give_way); 0 turns giving way off.
    bulk_give_way_max_seconds: float = 2.0
    # A broadcast's fan-out writes its next chunk only while its lane holds fewer than this
    # many deliveries waiting in the broker (0: no limit). Written far ahead of the pushes, a
    # million rows outgrow the database's cache before they are sent, and every push, record
    # and ack reads its pages back in.
    broadcast_ahead_max: int = 20000

    carrier_url: str = "http://127.0.0.1:8003"
    carrier_access_key: str = "demo"
    sms_default_signature: str | None = None
    # Carrier submissions in flight per worker process (a batch is submitted concurrently).
    sms_concurrency: int = 8
    # Longest message accepted, in parts; each part is billed (carriers' message rules).
    sms_max_parts: int = 5
    # Price per part by destination prefix, longest prefix wins: "+86=0.045,+1=0.0079,*=0.05".
    sms_prices: str = "*=0.05"
    # Per-number frequency limits (defaults: Alibaba Cloud SMS flow control).
    sms_limit_verification_minute: int = 1
    sms_limit_verification_hour: int = 5
    sms_limit_verification_day: int = 10
    sms_limit_other_day: int = 50
    # Promotional SMS waits out these local hours of the recipient ("HH:MM-HH:MM").
    sms_quiet_hours: str = "21:00-08:00"
    # Ask the carrier for a delivery report that has not arrived by webhook after this long.
    sms_poll_after_seconds: int = 120

    receipt_deadline_default: int = 30
    receipt_deadline_min: int = 15
    receipt_deadline_max: int = 3 * 24 * 3600
    message_ttl_default: int = 24 * 3600
    # One-time codes: short-lived, SMS by default (concurrent push+SMS only when allowed here),
    # and never pushed to a device bound in the last N hours (a fresh binding may be an attacker).
    verification_ttl_default: int = 300
    verification_ttl_max: int = 1800
    verification_allow_concurrent: bool = False
    verification_sms_only_hours: int = 24
    # SMS templates of the security notices sent when a device is linked to an account.
    security_notice_template: str = "security.device_linked"
    security_moved_template: str = "security.device_moved"
    # A worker serves Prometheus metrics on this port (0: off); the API serves /metrics.
    metrics_port: int = 0
    max_attempts: int = 5
    # A delivery left in `sending` this long belongs to a worker that died: it is re-queued.
    sending_lease_seconds: int = 300
    retry_base_seconds: float = 1.0
    retry_cap_seconds: float = 120.0

    @property
    def home_path(self) -> Path:
        return Path(self.home).resolve()

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_path / 'notifier.db'}"

    @property
    def broker(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def broker_folder(self) -> Path:
        return self.home_path / "broker"

    @property
    def uses_filesystem_broker(self) -> bool:
        return self.broker.startswith("filesystem://")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from `env` (default: os.environ)."""
    source = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in fields(Settings):
        var = f"NOTIFIER_{f.name.upper()}"
        if var not in source:
            continue
        parser = _PARSERS[str(f.type)]
        try:
            values[f.name] = parser(source[var])
        except ValueError as exc:
            raise SettingsError(f"{var}={source[var]!r}: {exc}") from exc
    return Settings(**values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return load_settings()
