"""API-key authentication with scopes: `device` (what a mobile app embeds), `send`,
`carrier` (webhooks) and `admin` (everything)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Header

from notifier.store import apikeys


class Unauthorized(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def require(*scopes: str) -> Callable[..., apikeys.Caller]:
    """Dependency: a live API key holding one of `scopes` (admin holds them all)."""

    def check(authorization: str | None = Header(default=None)) -> apikeys.Caller:
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized(401, "missing `Authorization: Bearer <api key>` header")
        caller = apikeys.caller_of(authorization[7:].strip())
        if caller is None:
            raise Unauthorized(401, "unknown or revoked API key")
        if "admin" not in caller.scopes and not caller.scopes.intersection(scopes):
            raise Unauthorized(403, f"this key lacks scope {' or '.join(scopes)}")
        return caller

    return check
