"""API-key authentication with scopes: `device` (what a mobile app embeds), `send`,
`carrier` (webhooks) and `admin` (everything)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Header
from starlette.concurrency import run_in_threadpool

from notifier.store import apikeys


class Unauthorized(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def require(*scopes: str) -> Callable[..., Awaitable[apikeys.Caller]]:
    """Dependency: a live API key holding one of `scopes` (admin holds them all).

    Async, so that a key seen a moment ago costs no trip through the thread pool: a sync
    dependency is run in a worker thread, and that hand-off cost the API ~250 µs of CPU per
    request here, as much as a small ack batch's own work. Only an unseen key goes to a
    thread, for its database lookup."""

    async def check(authorization: str | None = Header(default=None)) -> apikeys.Caller:
        key = bearer_key(authorization)
        if key is None:
            raise Unauthorized(401, "missing `Authorization: Bearer <api key>` header")
        caller = apikeys.seen_caller(key) or await run_in_threadpool(apikeys.caller_of, key)
        if caller is None:
            raise Unauthorized(401, "unknown or revoked API key")
        if not permits(caller, scopes):
            raise Unauthorized(403, f"this key lacks scope {' or '.join(scopes)}")
        return caller

    return check


def bearer_key(authorization: str | None) -> str | None:
    """The API key of an `Authorization: Bearer <key>` header, if that is what it holds."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    return authorization[7:].strip()


def permits(caller: apikeys.Caller, scopes: tuple[str, ...]) -> bool:
    """Whether the key holds one of `scopes` (admin holds them all)."""
    return "admin" in caller.scopes or bool(caller.scopes.intersection(scopes))
