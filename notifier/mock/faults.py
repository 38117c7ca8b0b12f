"""Fault injection for the mock providers: error rates by code, Retry-After, added latency.

Rules come from NOTIFIER_MOCK_FAULTS (a JSON list) at start and from `PUT /_mock/faults` at
run time; each applies to device tokens starting with its `prefix` ("" for all). The first
rule whose dice roll hits decides the error; latencies of all matching rules add up.
Connection drops and GOAWAY cannot come from inside an ASGI app: see notifier.mock.proxy.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class FaultRule:
    prefix: str = ""
    status: int | None = None
    reason: str | None = None
    rate: float = 0.0
    retry_after: float | None = None
    latency_ms: float = 0.0

    @classmethod
    def parse(cls, raw: Any) -> FaultRule:
        if not isinstance(raw, dict):
            raise ValueError("each fault rule is an object")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault rule fields: {sorted(unknown)}")
        rule = cls(**raw)
        if not 0.0 <= rule.rate <= 1.0:
            raise ValueError("rate is a probability between 0 and 1")
        if rule.rate and not (rule.status and rule.reason):
            raise ValueError("a rule with a rate needs status and reason")
        return rule


@dataclass(frozen=True)
class Injected:
    status: int
    reason: str
    retry_after: float | None


class Faults:
    def __init__(self, rules: list[FaultRule] | None = None, seed: int | None = None) -> None:
        self.rules = rules or []
        self.rng = random.Random(seed)
        self.injected = 0
        # Requests held open by injected latency right now, and the most at once since the
        # rules were last set: how many a client really had in flight.
        self.held = 0
        self.peak_held = 0

    @classmethod
    def from_env(cls) -> Faults:
        raw = os.environ.get("NOTIFIER_MOCK_FAULTS", "")
        return cls([FaultRule.parse(r) for r in json.loads(raw)] if raw else [])

    def replace(self, raw_rules: list[Any]) -> None:
        self.rules = [FaultRule.parse(r) for r in raw_rules]
        self.peak_held = self.held

    async def hold(self, seconds: float) -> None:
        """Keep a request open `seconds` (its injected latency), counted while it waits."""
        self.held += 1
        self.peak_held = max(self.peak_held, self.held)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.held -= 1

    def describe(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.rules]

    def for_token(self, token: str) -> tuple[float, Injected | None]:
        """Seconds of added latency, and the error to answer with (None: behave)."""
        matching = [r for r in self.rules if token.startswith(r.prefix)]
        latency = sum(r.latency_ms for r in matching) / 1000.0
        for rule in matching:
            if rule.rate and self.rng.random() < rule.rate:
                self.injected += 1
                assert rule.status is not None and rule.reason is not None
                return latency, Injected(rule.status, rule.reason, rule.retry_after)
        return latency, None
