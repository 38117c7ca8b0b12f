"""HTTP API: parse, authenticate, call the producer, answer. No rules live here."""

from __future__ import annotations

from typing import Any

from fastapi import Body, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from notifier import inbox, logs, metrics, producer, search
from notifier.api.ack_route import AckRoute
from notifier.api.auth import Unauthorized, require
from notifier.api.body import json_object, uuid_param
from notifier.api.broadcast_routes import broadcast_router
from notifier.api.device_routes import device_router
from notifier.api.sms_routes import sms_router
from notifier.domain.errors import Conflict, InvalidInput, NotFound, Unavailable
from notifier.store.views import message_view


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InvalidInput)
    def invalid(_r: Request, exc: InvalidInput) -> JSONResponse:
        return _error(422, "invalid_input", str(exc), field=exc.field, rule=exc.rule)

    @app.exception_handler(NotFound)
    def not_found(_r: Request, exc: NotFound) -> JSONResponse:
        return _error(404, "not_found", str(exc))

    @app.exception_handler(Conflict)
    def conflict(_r: Request, exc: Conflict) -> JSONResponse:
        return _error(409, "conflict", str(exc))

    @app.exception_handler(Unavailable)
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    def unavailable(_r: Request, exc: Exception) -> JSONResponse:
        # Nothing was accepted (or, at commit, maybe): retrying with the same key is safe.
        response = _error(503, "unavailable", "database unavailable; retry shortly")
        response.headers["retry-after"] = "1"
        return response

    @app.exception_handler(RequestValidationError)
    def unreadable(_r: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own refusals (a body that is not JSON, a missing body) in our error shape.
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ("body",)))
        rule = str(first.get("msg", "invalid request"))
        return _error(422, "invalid_input", f"{where}: {rule}", field=where, rule=rule)

    @app.exception_handler(StarletteHTTPException)
    def http_error(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Routing refusals (unknown path, wrong method) in our error shape too.
        code = "not_found" if exc.status_code == 404 else f"http_{exc.status_code}"
        response = _error(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(Unauthorized)
    def unauthorized(_r: Request, exc: Unauthorized) -> JSONResponse:
        return _error(exc.status, "unauthorized" if exc.status == 401 else "forbidden", str(exc))


# No request of this API needs more: a batch of 1,000 acks is about 80 kB.
MAX_BODY_BYTES = 1 << 20


class BodySizeLimit:
    """Refuses a request whose declared body is too large before reading it. Plain ASGI, not
    `@app.middleware("http")`: that wrapper costs every request a task group and a stream
    pair, about as much CPU as a whole ack batch's HTTP handling."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = Headers(scope=scope).get("content-length", "")
            if length.isdigit() and int(length) > MAX_BODY_BYTES:
                message = f"request body over {MAX_BODY_BYTES} bytes"
                await _error(413, "too_large", message, field="body")(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app() -> FastAPI:
    logs.install()
    app = FastAPI(title="notifier", version="0.1.0")
    _install_error_handlers(app)
    app.add_middleware(AckRoute)
    app.add_middleware(BodySizeLimit)  # added last: outermost, before AckRoute reads a body
    app.include_router(sms_router())
    app.include_router(device_router())
    app.include_router(broadcast_router())

    # Async: nothing here waits, and a sync endpoint pays a hand-off to a worker thread.
    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.put("/v1/users/{user_id}/phone", dependencies=[Depends(require("send"))])
    def bind_phone(user_id: str, body: Any = Body(...)) -> dict[str, str]:
        producer.bind_phone(user_id, json_object(body).get("phone"))
        return {"user_id": user_id}

    @app.post("/v1/messages", status_code=202, dependencies=[Depends(require("send"))])
    def send(
        body: Any = Body(...), idempotency_key: str | None = Header(default=None)
    ) -> dict[str, str]:
        b = json_object(body)
        if idempotency_key and not b.get("idempotency_key"):
            b["idempotency_key"] = idempotency_key
        message_id = producer.send_payload(b)
        return {"message_id": str(message_id)}

    @app.get("/v1/messages", dependencies=[Depends(require("send"))])
    def find(
        user_id: str | None = None,
        state: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        return search.find_messages(user_id, state, since, until, limit, cursor)

    @app.get("/v1/messages/{message_id}", dependencies=[Depends(require("send"))])
    def status(message_id: str) -> dict[str, Any]:
        return message_view(uuid_param(message_id, "message_id"))

    @app.get("/v1/users/{user_id}/inbox", dependencies=[Depends(require("send"))])
    def user_inbox(user_id: str, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        return inbox.page(user_id, limit, cursor)

    @app.post("/v1/users/{user_id}/inbox/read", dependencies=[Depends(require("send"))])
    def inbox_read(user_id: str, body: Any = Body(...)) -> dict[str, int]:
        ids = json_object(body).get("message_ids")
        if ids is not None and not isinstance(ids, list):
            raise InvalidInput("message_ids", "a list of message ids, or null for all")
        return {"marked": inbox.mark_read(user_id, ids)}

    return app
