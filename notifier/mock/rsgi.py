"""An ASGI app run under granian's RSGI interface, for the mocks' routes other than the hot one.

The mocks are served over RSGI (fastpath.FastRoute) because granian's ASGI layer builds a
scope dict, header byte pairs and a message per event for every request: ~30 µs of CPU per
push more than RSGI's objects on this box, and the mocks share the box with the run they
stand in for. Their admin routes, token endpoints and fault rules stay FastAPI's, reached
through this bridge: the request body is read whole (they are small JSON or form bodies)
and a response is sent whole, or streamed when the app streams it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from starlette.types import ASGIApp, Message

# The RSGI objects granian passes (granian.rsgi.Scope / HTTPProtocol), typed loosely: granian
# ships them as a compiled module.
RsgiScope = Any
RsgiProtocol = Any


def _address(spelled: str) -> tuple[str, int] | None:
    host, _, port = spelled.rpartition(":")
    return (host, int(port)) if port.isdigit() else None


def asgi_scope(scope: RsgiScope) -> dict[str, Any]:
    path = scope.path
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": scope.http_version,
        "method": scope.method,
        "scheme": scope.scheme,
        "path": unquote(path),
        "raw_path": path.encode("latin-1"),
        "query_string": scope.query_string.encode("latin-1"),
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in scope.headers.items()],
        "client": _address(scope.client),
        "server": _address(scope.server),
    }


async def run_asgi(app: ASGIApp, scope: RsgiScope, protocol: RsgiProtocol) -> None:
    """Serve one HTTP request of `protocol` with the ASGI `app`."""
    received = False
    start: Message | None = None
    stream: Any = None

    async def receive() -> Message:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": await protocol(), "more_body": False}
        await protocol.client_disconnect()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal start, stream
        if message["type"] == "http.response.start":
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            return
        body, more = message.get("body", b""), message.get("more_body", False)
        if stream is None and not more:
            protocol.response_bytes(start["status"], str_headers(start.get("headers", [])), body)
            return
        if stream is None:
            stream = protocol.response_stream(
                start["status"], str_headers(start.get("headers", []))
            )
        if body:
            await stream.send_bytes(body)

    await app(asgi_scope(scope), receive, send)


def str_headers(pairs: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """ASGI's byte header pairs as the text pairs an RSGI response takes."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in pairs]
