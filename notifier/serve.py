"""Serve an ASGI app factory with granian: HTTP/1.1 and HTTP/2 (h2c) on one port."""

from __future__ import annotations

import socket
from importlib import import_module
from typing import Any

from granian import Granian
from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP2Settings

from notifier import heap

# What APNs typically grants a connection once its token is accepted (PROTOCOLS.md: "often
# ~1000"); granian's default of 200 would make the mocks stricter than the real service.
MAX_CONCURRENT_STREAMS = 1000


class PortTaken(RuntimeError):
    pass


def ensure_free(host: str, port: int) -> None:
    """Refuse a port something already listens on. granian listens with SO_REUSEPORT, so a
    second server on a taken port would start without error and the kernel would split
    connections between the two (seen: the API and a mock on one port, each answering 404
    to half of the other's callers). SO_REUSEADDR on the probe ignores connections of an
    earlier run lingering in TIME_WAIT; on Linux it still fails against a listener."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            taken = f"--port {port}: {host}:{port} is already in use ({exc.strerror})"
            raise PortTaken(taken) from None


def serve(target: str, host: str, port: int) -> None:
    """Block serving `module:factory` until SIGTERM/SIGINT. The push mocks are served over
    RSGI (mock.fastpath: their hot route is RSGI-native, the rest bridged), the others (API,
    carrier) over ASGI."""
    ensure_free(host, port)
    rsgi = target.rpartition(":")[2] in RSGI_APPS
    Granian(
        target,
        address=host,
        port=port,
        interface=Interfaces.RSGI if rsgi else Interfaces.ASGI,
        http=HTTPModes.auto,
        factory=True,
        http2_settings=HTTP2Settings(max_concurrent_streams=MAX_CONCURRENT_STREAMS),
        workers=1,
        # uvloop's event loop costs a mock ~25 % less CPU per push than asyncio's (~140 ->
        # ~105 µs under the bench's load generator), and the API a little less per ack
        # request; on one box that CPU is the broadcast's.
        loop=Loops.uvloop,
        log_access=False,
    ).serve()


APPS = {
    "api": "notifier.api.app",
    "apns": "notifier.mock.apns",
    "fcm": "notifier.mock.fcm",
    "carrier": "notifier.mock.carrier",
}


def _settled(name: str) -> Any:
    """The app of `name`, built in the serving process, which then settles its heap."""
    app = import_module(APPS[name]).create_app()
    heap.settle()
    return app


def api() -> Any:
    from notifier.store.db import name_connections  # the API's alone: mocks have no database

    name_connections("api")
    return _settled("api")


def apns() -> Any:
    return _settled("apns")


def fcm() -> Any:
    return _settled("fcm")


def carrier() -> Any:
    return _settled("carrier")


RSGI_APPS = ("apns", "fcm")  # their factories return a FastRoute, which speaks RSGI
TARGETS = {name: f"notifier.serve:{name}" for name in APPS}
