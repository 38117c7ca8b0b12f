"""Helpers to read untrusted JSON bodies with errors that name the field."""

from __future__ import annotations

import uuid
from typing import Any

from notifier.domain.errors import InvalidInput


def json_object(body: Any, name: str = "body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput(name, "must be a JSON object")
    return body


def json_objects(body: Any, name: str = "body") -> list[dict[str, Any]]:
    """A JSON array of objects, or one object taken as an array of one."""
    items = body if isinstance(body, list) else [body]
    return [json_object(item, f"{name}[{i}]") for i, item in enumerate(items)]


def uuid_param(raw: str, field: str) -> uuid.UUID:
    """A path parameter that must be a UUID; a refusal names it."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput(field, f"{raw!r} is not a UUID") from None
