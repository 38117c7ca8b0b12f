"""One rooted error hierarchy: everything the library raises on purpose is a NotifierError."""

from __future__ import annotations


class NotifierError(Exception):
    """Base of every error notifier raises deliberately."""


class InvalidInput(NotifierError):
    """Bad input refused at the edge; names the field and the rule it broke."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class NotFound(NotifierError):
    def __init__(self, what: str, key: object) -> None:
        super().__init__(f"{what} {key} not found")
        self.what = what
        self.key = key


class Conflict(NotifierError):
    """The request contradicts what is already stored (e.g. a reused idempotency key)."""


class Unavailable(NotifierError):
    """A service we depend on (the database) is down; nothing was accepted, retry later.

    If it happened at commit time the outcome is unknown: retry with the same idempotency key.
    """
