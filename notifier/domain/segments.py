"""Broadcast audiences: which users and devices a segment selects. Parsing and rules, no I/O.

A segment is explicit about its reach: user ids, or filters (tags every user must carry, a
platform, a locale prefix, a minimum app version), or `{"all": true}` for everyone — an empty
segment is refused rather than read as "all".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from notifier.domain.errors import InvalidInput
from notifier.domain.requests import PLATFORMS, user_id

TAG = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
VERSION = re.compile(r"^\d{1,6}(\.\d{1,6}){0,3}$")
MAX_USER_IDS = 10_000
MAX_TAGS = 50
KEYS = ("all", "user_ids", "tags", "platform", "locale", "app_version_min")


@dataclass(frozen=True)
class Segment:
    everyone: bool = False
    user_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    platform: str | None = None
    locale: str | None = None
    app_version_min: str | None = None

    def to_json(self) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "all": self.everyone or None,
            "user_ids": list(self.user_ids) or None,
            "tags": list(self.tags) or None,
            "platform": self.platform,
            "locale": self.locale,
            "app_version_min": self.app_version_min,
        }
        return {k: v for k, v in raw.items() if v is not None}

    def admits(self, platform: str, locale: str | None, app_version: str | None) -> bool:
        """The per-device part of the rule (users and tags are matched in the query)."""
        if self.platform and platform != self.platform:
            return False
        if self.locale and not (locale or "").lower().replace("_", "-").startswith(self.locale):
            return False
        if self.app_version_min:
            if not app_version or not VERSION.match(app_version):
                return False
            return version(app_version) >= version(self.app_version_min)
        return True


def _locale(tag: str | None) -> str | None:
    """A locale prefix as devices' locales are compared: lower case, `-` for `_` (pt_BR and
    pt-BR are one language tag; and in SQL's LIKE an `_` would match any character)."""
    return tag.lower().replace("_", "-") if tag else None


def version(text: str) -> tuple[int, ...]:
    """`2.10.1` → (2, 10, 1, 0): numeric, so 2.10 sorts after 2.9."""
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (4 - len(parts))


def tags(raw: object, field: str = "tags") -> tuple[str, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_TAGS:
        raise InvalidInput(field, f"a list of at most {MAX_TAGS} tags")
    for i, tag in enumerate(raw):
        if not isinstance(tag, str) or not TAG.match(tag):
            raise InvalidInput(f"{field}[{i}]", "1-64 letters, digits or _ . : -")
    return tuple(dict.fromkeys(raw))


def _optional(raw: Mapping[str, Any], name: str, pattern: re.Pattern[str], rule: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise InvalidInput(f"segment.{name}", rule)
    return value


def parse_segment(raw: object) -> Segment:
    if not isinstance(raw, Mapping):
        raise InvalidInput("segment", 'an object, e.g. {"tags": ["vip"], "platform": "apns"}')
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise InvalidInput(f"segment.{unknown[0]}", f"unknown; segments use {', '.join(KEYS)}")
    everyone = raw.get("all", False)
    if not isinstance(everyone, bool):
        raise InvalidInput("segment.all", "true or false")
    ids = raw.get("user_ids")
    if ids is not None and (not isinstance(ids, list) or not 0 < len(ids) <= MAX_USER_IDS):
        raise InvalidInput("segment.user_ids", f"a list of 1-{MAX_USER_IDS} user ids")
    user_ids = tuple(user_id(u, f"segment.user_ids[{i}]") for i, u in enumerate(ids or []))
    platform = raw.get("platform")
    if platform is not None and platform not in PLATFORMS:
        raise InvalidInput("segment.platform", f"one of {', '.join(PLATFORMS)}")
    segment = Segment(
        everyone=everyone,
        user_ids=tuple(dict.fromkeys(user_ids)),
        tags=tags(raw["tags"], "segment.tags") if raw.get("tags") is not None else (),
        platform=platform,
        locale=_locale(_optional(raw, "locale", LOCALE, "a language tag, e.g. en or pt-BR")),
        app_version_min=_optional(raw, "app_version_min", VERSION, "a version, e.g. 2.10.1"),
    )
    if segment == Segment() or (everyone and segment != Segment(everyone=True)):
        raise InvalidInput(
            "segment", 'name who: user_ids and/or filters, or {"all": true} alone for everyone'
        )
    return segment
