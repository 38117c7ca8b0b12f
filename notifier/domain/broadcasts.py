"""A broadcast request: one push to everyone a segment selects. Parsing only, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from notifier.domain.errors import InvalidInput
from notifier.domain.policy import MessageClass
from notifier.domain.requests import Limits, PushContent, parse_push
from notifier.domain.segments import Segment, parse_segment

MAX_NAME = 128


@dataclass(frozen=True)
class BroadcastRequest:
    name: str
    segment: Segment
    push: PushContent
    message_class: MessageClass
    ttl: int
    receipt_deadline: int


def parse_broadcast(payload: Mapping[str, Any], limits: Limits) -> BroadcastRequest:
    segment = parse_segment(payload.get("segment"))
    name = payload.get("name") or "broadcast"
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise InvalidInput("name", f"a string of at most {MAX_NAME} characters")
    raw_class = payload.get("class", MessageClass.PROMOTIONAL.value)
    try:
        cls = MessageClass(raw_class)
    except ValueError:
        raise InvalidInput("class", "promotional or transactional") from None
    if cls is MessageClass.VERIFICATION:
        raise InvalidInput("class", "one-time codes go to one user each, never by broadcast")
    ttl = payload.get("ttl", limits.ttl_default)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= limits.ttl_max:
        raise InvalidInput("ttl", f"whole seconds from 1 to {limits.ttl_max}")
    deadline = payload.get("receipt_deadline", limits.receipt_deadline_default)
    low, high = limits.receipt_deadline_min, limits.receipt_deadline_max
    if isinstance(deadline, bool) or not isinstance(deadline, int) or not low <= deadline <= high:
        raise InvalidInput("receipt_deadline", f"whole seconds from {low} to {high}")
    return BroadcastRequest(name, segment, parse_push(payload.get("push")), cls, ttl, deadline)
