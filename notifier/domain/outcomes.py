"""Classified provider outcomes and the retry schedule. Providers map responses to these."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    INVALID_TARGET = "invalid_target"
    REJECTED = "rejected"
    EXPIRED = "expired"  # the message's TTL passed before this delivery could go out


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    status_code: int | None = None
    provider_ref: str | None = None
    error_code: str | None = None
    detail: str | None = None
    retry_after: float | None = None

    @classmethod
    def sent(cls, status_code: int | None, provider_ref: str | None) -> Outcome:
        return cls(Kind.SENT, status_code, provider_ref)

    @classmethod
    def retry(
        cls,
        status_code: int | None,
        error_code: str,
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> Outcome:
        return cls(Kind.RETRY, status_code, None, error_code, detail, retry_after)

    @classmethod
    def invalid_target(
        cls, status_code: int | None, error_code: str, detail: str | None = None
    ) -> Outcome:
        return cls(Kind.INVALID_TARGET, status_code, None, error_code, detail)

    @classmethod
    def rejected(
        cls, status_code: int | None, error_code: str, detail: str | None = None
    ) -> Outcome:
        return cls(Kind.REJECTED, status_code, None, error_code, detail)


EXPIRED = Outcome(Kind.EXPIRED, None, None, "ttl_expired", "the message expired before it was sent")


def backoff_seconds(
    attempt: int,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Exponential backoff with full jitter; a Retry-After from the provider is a floor."""
    rng = rng or random.Random()
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    delay = rng.uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
