"""A JSON document encoded once, with holes for the strings that differ per delivery.

A broadcast sends one payload to thousands of devices; only the device token and the
delivery id differ. Encoding the whole document per request cost a push worker more CPU than
anything else it does in Python outside libcurl; a template encodes it once per distinct
payload and splices each delivery's strings in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# Stand-ins for the holes while the document is encoded once. A payload that happens to hold
# one of them itself is encoded whole, as before (`JsonTemplate.of` returns None).
HOLES = ("\x00hole-0\x00", "\x00hole-1\x00")


# One encoder for every call: json.dumps with any non-default option builds a new encoder
# each time, which cost more than encoding a delivery's id or token.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_encode = _ENCODER.encode


def compact(doc: Any) -> bytes:
    """`doc` as the compact UTF-8 JSON a push body is sent as."""
    return _encode(doc).encode()


def spliced(
    template: Callable[..., JsonTemplate | None], key: tuple[Any, ...], *values: str
) -> bytes | None:
    """The cached `template(*key)` filled with `values`; None when there is none to fill (a
    data value that cannot key the cache, or a document holding a hole marker itself)."""
    try:
        found = template(*key)
    except TypeError:  # unhashable: a data value that is not a string
        return None
    return found.fill(*values) if found is not None else None


class JsonTemplate:
    def __init__(self, parts: list[str], order: list[int]) -> None:
        self._parts = parts  # the text around the holes, len(order) + 1 pieces
        self._order = order  # which value fills each hole, left to right

    @classmethod
    def of(cls, doc: Any, holes: int) -> JsonTemplate | None:
        """A template of `doc`, in which HOLES[:holes] each appear exactly once as a string
        value; None if they do not (the caller then encodes each document whole)."""
        text = _encode(doc)
        found: list[tuple[int, int, int]] = []  # (position, length, hole number)
        for number, hole in enumerate(HOLES[:holes]):
            marker = _encode(hole)
            if text.count(marker) != 1:
                return None
            found.append((text.index(marker), len(marker), number))
        found.sort()
        parts, start = [], 0
        for position, length, _ in found:
            parts.append(text[start:position])
            start = position + length
        parts.append(text[start:])
        return cls(parts, [number for _, _, number in found])

    def fill(self, *values: str) -> bytes:
        """The document with the holes replaced by these strings, as UTF-8 JSON."""
        pieces = [self._parts[0]]
        for number, after in zip(self._order, self._parts[1:], strict=True):
            pieces.append(_encode(values[number]))
            pieces.append(after)
        return "".join(pieces).encode()
