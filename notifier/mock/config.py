"""Mock-only knobs (NOTIFIER_MOCK_*); provider credentials come from the normal Settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class MockConfig:
    api_url: str
    device_key: str
    carrier_key: str
    ack_delay: float
    dlr_delay: float
    dlr_retry_delays: tuple[float, ...]
    default_behaviour: str
    carrier_latency: float
    keep_received: int

    @classmethod
    def from_env(cls) -> MockConfig:
        env = os.environ
        retries = env.get("NOTIFIER_MOCK_DLR_RETRY_DELAYS", "60,300,600")
        return cls(
            api_url=env.get("NOTIFIER_API_URL", "http://127.0.0.1:8000").rstrip("/"),
            device_key=env.get("NOTIFIER_MOCK_DEVICE_KEY", ""),
            carrier_key=env.get("NOTIFIER_MOCK_CARRIER_KEY", ""),
            ack_delay=float(env.get("NOTIFIER_MOCK_ACK_DELAY", "0.3")),
            dlr_delay=float(env.get("NOTIFIER_MOCK_DLR_DELAY", "0.3")),
            # The big SMS clouds retry a failed receipt push at 1, 5 and 10 minutes.
            dlr_retry_delays=tuple(float(x) for x in retries.split(",") if x),
            default_behaviour=env.get("NOTIFIER_MOCK_DEFAULT_BEHAVIOUR", "online"),
            carrier_latency=float(env.get("NOTIFIER_MOCK_CARRIER_LATENCY_MS", "0")) / 1000.0,
            keep_received=_positive(env, "NOTIFIER_MOCK_KEEP_RECEIVED", 100_000),
        )


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {raw!r}")
    return int(raw)
