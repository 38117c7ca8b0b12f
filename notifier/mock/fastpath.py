"""The mocks' hot route served in front of their FastAPI apps, over RSGI or ASGI.

A push passes FastAPI's middleware stack, router and dependency machinery before its handler
runs, which cost the mock more CPU than the handler itself; the bench then measured the mock
instead of notifier. The one route every push takes goes straight to its handler; everything
else (admin, tokens, fault rules) is still FastAPI's. granian serves the mocks over RSGI
(`__rsgi__`), which costs a request ~30 µs less than its ASGI layer; `__call__` is the same
route in ASGI, for in-process clients (tests) and any ASGI server.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import NamedTuple

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from notifier.asgi_body import read_body
from notifier.mock.rsgi import RsgiProtocol, RsgiScope, run_asgi, str_headers

# What a handler reads request headers through (lower-case names): starlette's Headers under
# ASGI, granian's RSGIHeaders (get, [], items, as a Mapping) under RSGI.
RequestHeaders = Mapping[str, str]


class Answer(NamedTuple):
    """A whole response as plain values: what a handler returns on its common path. A
    starlette Response builds its header list and checks its body on creation (~3 µs of a
    push's ~12 µs in the handler); under RSGI these values go to granian as they are."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    @classmethod
    def of(cls, response: Response) -> Answer:
        """A starlette Response's values (error answers are built as Responses)."""
        headers = tuple(str_headers(response.raw_headers))
        return cls(response.status_code, headers, bytes(response.body))

    def response(self) -> Response:
        return Response(self.body, self.status, dict(self.headers))


# (the path's one parameter, the request headers, the body) -> the response
Handler = Callable[[str, RequestHeaders, bytes], Awaitable[Response | Answer]]


class FastRoute:
    def __init__(self, app: ASGIApp, method: str, path: str, handler: Handler) -> None:
        """`path` is a regular expression with one group: the handler's parameter."""
        self.app, self.method, self.handler = app, method, handler
        self.path = re.compile(path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == self.method:
            match = self.path.fullmatch(scope["path"])
            if match is not None:
                body = await read_body(receive)
                response = await self.handler(match.group(1), Headers(scope=scope), body)
                if isinstance(response, Answer):
                    response = response.response()
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def __rsgi__(self, scope: RsgiScope, protocol: RsgiProtocol) -> None:
        if scope.proto == "http" and scope.method == self.method:
            match = self.path.fullmatch(scope.path)
            if match is not None:
                body = await protocol()
                response = await self.handler(match.group(1), scope.headers, body)
                answer = response if isinstance(response, Answer) else Answer.of(response)
                protocol.response_bytes(answer.status, list(answer.headers), answer.body)
                return
        if scope.proto == "http":
            await run_asgi(self.app, scope, protocol)
