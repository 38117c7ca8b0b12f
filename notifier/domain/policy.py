"""Delivery policies: which channels a message uses and when SMS joins in."""

from __future__ import annotations

from enum import StrEnum


class Policy(StrEnum):
    PUSH_ONLY = "push_only"
    SMS_ONLY = "sms_only"
    CONCURRENT = "concurrent"
    SUPPLEMENT = "supplement"

    @property
    def uses_push(self) -> bool:
        return self is not Policy.SMS_ONLY

    @property
    def uses_sms(self) -> bool:
        return self is not Policy.PUSH_ONLY


def sms_starts_immediately(policy: Policy, active_devices: int) -> bool:
    """Whether the SMS delivery is queued at acceptance rather than held in standby.

    Supplement with no device to push to has nothing to wait for: it goes straight to SMS.
    """
    if policy in (Policy.SMS_ONLY, Policy.CONCURRENT):
        return True
    return policy is Policy.SUPPLEMENT and active_devices == 0
