"""Serve an ASGI app factory with granian: HTTP/1.1 and HTTP/2 (h2c) on one port."""

from __future__ import annotations

from granian import Granian
from granian.constants import HTTPModes, Interfaces


def serve(target: str, host: str, port: int) -> None:
    """Block serving `module:factory` until SIGTERM/SIGINT."""
    Granian(
        target,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        http=HTTPModes.auto,
        factory=True,
        workers=1,
        log_access=False,
    ).serve()


TARGETS = {
    "api": "notifier.api.app:create_app",
    "apns": "notifier.mock.apns:create_app",
    "fcm": "notifier.mock.fcm:create_app",
    "carrier": "notifier.mock.carrier:create_app",
}
