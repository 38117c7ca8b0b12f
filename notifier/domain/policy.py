"""Delivery policies as ordered plans of steps, confirmation triggers and message classes.

Every policy is a plan: a list of steps, each naming the channels used at once and how long
to wait for a confirmation before the next step runs. The named policies are fixed plans;
`chain` lets the caller write the steps.

    push_only   [push]
    sms_only    [sms]
    concurrent  [push + sms]
    supplement  [push (deadline)] → [sms]
    chain       e.g. [sms (deadline)] → [push]  or  [push (deadline)] → [sms]
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

PUSH = "push"
SMS = "sms"
CHANNELS = (PUSH, SMS)


class Policy(StrEnum):
    PUSH_ONLY = "push_only"
    SMS_ONLY = "sms_only"
    CONCURRENT = "concurrent"
    SUPPLEMENT = "supplement"
    CHAIN = "chain"


class Trigger(StrEnum):
    """What counts as a confirmed push when deciding whether the next step runs."""

    NOT_RECEIVED = "not_received"  # the device reported arrival
    NOT_OPENED = "not_opened"  # the user opened it


def trigger_of(stored: str) -> Trigger:
    """The trigger a stored message names (a dict lookup: `Trigger(...)` per message decided
    cost as much as the rest of reading its plan)."""
    try:
        return _TRIGGERS[stored]
    except KeyError:
        return Trigger(stored)  # raises the enum's own error for an unknown value


_TRIGGERS = {t.value: t for t in Trigger}


class MessageClass(StrEnum):
    TRANSACTIONAL = "transactional"
    VERIFICATION = "verification"
    PROMOTIONAL = "promotional"

    @property
    def template_kind(self) -> str:
        """The SMS template kind a message of this class must use."""
        return "notification" if self is MessageClass.TRANSACTIONAL else self.value

    @property
    def bulk(self) -> bool:
        """Promotional traffic travels on its own queues, so it never delays the rest."""
        return self is MessageClass.PROMOTIONAL

    def lane(self, channel: str) -> str:
        """The queue a delivery of this class on `channel` travels on."""
        return lane(channel, self.bulk)


def lane(channel: str, bulk: bool) -> str:
    """`push` / `sms`, or their bulk lanes `push_bulk` / `sms_bulk`."""
    return f"{channel}_bulk" if bulk else channel


@dataclass(frozen=True)
class Step:
    channels: tuple[str, ...]
    deadline: int  # seconds to wait for a confirmation (the push receipt deadline)

    def to_json(self) -> dict[str, object]:
        return {"channels": list(self.channels), "deadline": self.deadline}


Plan = tuple[Step, ...]


def plan_of(policy: Policy, deadline: int, chain: Sequence[Step] | None = None) -> Plan:
    if policy is Policy.CHAIN:
        if not chain:
            raise ValueError("a chain policy needs its steps")
        return tuple(chain)
    return _named_plan(policy, deadline)


@functools.lru_cache(maxsize=256)
def _named_plan(policy: Policy, deadline: int) -> Plan:
    # Cached: every ack and receipt check asks for the plan of each message it decides on,
    # and plans are immutable tuples of a handful of (policy, deadline) pairs in practice.
    return {
        Policy.PUSH_ONLY: (Step((PUSH,), deadline),),
        Policy.SMS_ONLY: (Step((SMS,), deadline),),
        Policy.CONCURRENT: (Step((PUSH, SMS), deadline),),
        Policy.SUPPLEMENT: (Step((PUSH,), deadline), Step((SMS,), deadline)),
    }[policy]


def plan_from_json(policy: str, deadline: int, chain: Sequence[Mapping[str, Any]] | None) -> Plan:
    """The plan of a stored message (`chain` holds the steps only for the chain policy)."""
    if not chain:
        return _stored_plan(policy, deadline)
    steps = [Step(tuple(str(c) for c in s["channels"]), int(s["deadline"])) for s in chain]
    return plan_of(Policy(policy), deadline, steps)


@functools.lru_cache(maxsize=256)
def _stored_plan(policy: str, deadline: int) -> Plan:
    # Keyed by the stored strings: an ack batch asks once per message, and the enum lookup
    # cost more than the cached plan itself.
    return plan_of(Policy(policy), deadline)


def channels_of(plan: Plan) -> set[str]:
    return {c for step in plan for c in step.channels}


def first_step(plan: Plan, available: set[str]) -> int | None:
    """The first step that has somewhere to deliver; steps without a target are skipped
    (supplement for a user with no device goes straight to SMS)."""
    for index, step in enumerate(plan):
        if available.intersection(step.channels):
            return index
    return None
