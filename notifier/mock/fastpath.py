"""The mocks' hot route served as plain ASGI in front of their FastAPI apps.

A push passes FastAPI's middleware stack, router and dependency machinery before its handler
runs, which cost the mock more CPU than the handler itself; the bench then measured the mock
instead of notifier. The one route every push takes goes straight to its handler; everything
else (admin, tokens, fault rules) is still FastAPI's.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from notifier.asgi_body import read_body

# (the path's one parameter, the request headers, the body) -> the response
Handler = Callable[[str, Headers, bytes], Awaitable[Response]]


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
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
