"""What a push worker hands to a provider client: one delivery, fully resolved."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class PushJob:
    delivery_id: str
    platform: str
    token: str
    title: str
    body: str
    expires_at: datetime
    data: dict[str, str] = field(default_factory=dict)
    collapse_id: str | None = None
    # A background (silent) push wakes the app without showing anything; APNs requires
    # priority 5 for it, and FCM sends it as a data-only message.
    background: bool = False
    # "high" delivers at once; "normal" lets the device batch it to save power.
    priority: str = "high"
