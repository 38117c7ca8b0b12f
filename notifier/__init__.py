"""notifier: push notifications with SMS fallback on Celery.

Application code calls `notifier.send(...)`, `notifier.bind_device(...)` and friends; they are
loaded on first use so that importing a submodule (a mock server, say) stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ack", "ack_many", "bind_device", "bind_phone", "record_delivery_reports", "send"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from notifier import producer

        return getattr(producer, name)
    raise AttributeError(f"module 'notifier' has no attribute {name!r}")
