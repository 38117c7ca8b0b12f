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
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized(401, "missing `Authorization: Bearer <api key>` header")
        key = authorization[7:].strip()
        caller = apikeys.seen_caller(key) or await run_in_threadpool(apikeys.caller_of, key)
        if caller is None:
            raise Unauthorized(401, "unknown or revoked API key")
        if "admin" not in caller.scopes and not caller.scopes.intersection(scopes):
            raise Unauthorized(403, f"this key lacks scope {' or '.join(scopes)}")
        return caller

    return check
