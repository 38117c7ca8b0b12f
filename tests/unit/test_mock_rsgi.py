"""The mocks over RSGI: the hot route answered natively, every other route bridged to FastAPI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.responses import JSONResponse, Response

from notifier.mock.fastpath import Answer, FastRoute


@dataclass
class Scope:
    """What granian's RSGI scope carries (granian.rsgi.Scope)."""

    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    proto: str = "http"
    http_version: str = "2"
    scheme: str = "http"
    client: str = "127.0.0.1:50000"
    server: str = "127.0.0.1:8443"


class Stream:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    async def send_bytes(self, data: bytes) -> None:
        self.chunks.append(data)


class Protocol:
    """What granian's RSGI HTTP protocol object offers, recording the response."""

    def __init__(self, body: bytes = b"") -> None:
        self.body = body
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.sent: bytes | None = None
        self.stream: Stream | None = None

    async def __call__(self) -> bytes:
        return self.body

    async def client_disconnect(self) -> None:
        return None

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers, self.sent = status, headers, body

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> Stream:
        self.status, self.headers, self.stream = status, headers, Stream()
        return self.stream


def _app() -> FastRoute:
    app = FastAPI()

    @app.post("/_mock/echo/{name}")
    async def echo(name: str, request: Request) -> dict[str, Any]:
        return {
            "name": name,
            "query": request.query_params.get("q"),
            "header": request.headers.get("x-probe"),
            "body": (await request.body()).decode(),
            "client": request.client.host if request.client else None,
        }

    @app.get("/_mock/stream")
    def stream() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for part in (b"one,", b"two"):
                yield part

        return StreamingResponse(parts(), media_type="text/plain")

    async def hot(param: str, headers: Mapping[str, str], body: bytes) -> Response | Answer:
        if headers.get("authorization") != "bearer ok":
            return JSONResponse({"reason": "MissingProviderToken"}, 403, {"apns-id": param})
        if headers.get("x-plain") == "yes":
            return Answer(200, (("apns-id", param),), body)
        return Response(body, 200, {"apns-id": param})

    return FastRoute(app, "POST", r"/3/device/([^/]+)", hot)


def _serve(scope: Scope, protocol: Protocol) -> Protocol:
    asyncio.run(_app().__rsgi__(scope, protocol))
    return protocol


def test_the_hot_route_answers_natively_with_the_handlers_status_headers_and_body() -> None:
    ok = _serve(Scope("POST", "/3/device/abc", headers={"authorization": "bearer ok"}),
                Protocol(b'{"aps":{}}'))  # fmt: skip
    assert (ok.status, ok.sent) == (200, b'{"aps":{}}')
    assert ("apns-id", "abc") in ok.headers
    refused = _serve(Scope("POST", "/3/device/abc"), Protocol(b"{}"))
    assert refused.status == 403 and refused.sent == b'{"reason":"MissingProviderToken"}'
    assert ("content-type", "application/json") in refused.headers


def test_other_routes_reach_fastapi_with_path_query_headers_and_body() -> None:
    scope = Scope("POST", "/_mock/echo/a%20b", "q=1", {"x-probe": "yes"})
    answered = _serve(scope, Protocol(b"hello"))
    assert answered.status == 200 and answered.sent is not None
    assert JSONResponse({"name": "a b", "query": "1", "header": "yes", "body": "hello",
                         "client": "127.0.0.1"}).body == answered.sent  # fmt: skip


def test_a_streamed_response_is_streamed_and_unknown_routes_are_fastapis_404() -> None:
    streamed = _serve(Scope("GET", "/_mock/stream"), Protocol())
    assert streamed.status == 200 and streamed.stream is not None
    assert b"".join(streamed.stream.chunks) == b"one,two"
    missing = _serve(Scope("GET", "/nowhere"), Protocol())
    assert missing.status == 404
    wrong_method = _serve(Scope("GET", "/3/device/abc"), Protocol())
    assert wrong_method.status in (404, 405)


def test_a_plain_answer_goes_out_as_it_is_over_rsgi_and_as_a_response_over_asgi() -> None:
    headers = {"authorization": "bearer ok", "x-plain": "yes"}
    rsgi = _serve(Scope("POST", "/3/device/abc", headers=headers), Protocol(b"{}"))
    assert (rsgi.status, rsgi.headers, rsgi.sent) == (200, [("apns-id", "abc")], b"{}")

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/3/device/abc",
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}  # fmt: skip
    asyncio.run(_app()(scope, receive, send))
    assert sent[0]["status"] == 200 and (b"apns-id", b"abc") in sent[0]["headers"]
    assert sent[1]["body"] == b"{}"
