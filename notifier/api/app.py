"""HTTP API: parse, authenticate, call the producer, answer. No rules live here."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Body, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from notifier import inbox, producer
from notifier.api.auth import Unauthorized, require
from notifier.api.body import json_object
from notifier.api.sms_routes import sms_router
from notifier.domain.errors import Conflict, InvalidInput, NotFound
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

    @app.exception_handler(RequestValidationError)
    def unreadable(_r: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own refusals (a body that is not JSON, a missing body) in our error shape.
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ("body",)))
        rule = str(first.get("msg", "invalid request"))
        return _error(422, "invalid_input", f"{where}: {rule}", field=where, rule=rule)

    @app.exception_handler(Unauthorized)
    def unauthorized(_r: Request, exc: Unauthorized) -> JSONResponse:
        return _error(exc.status, "unauthorized" if exc.status == 401 else "forbidden", str(exc))


def _uuid(raw: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput(field, f"{raw!r} is not a UUID") from None


def create_app() -> FastAPI:
    app = FastAPI(title="notifier", version="0.1.0")
    _install_error_handlers(app)
    app.include_router(sms_router())

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/devices", status_code=201, dependencies=[Depends(require("device"))])
    def bind_device(body: Any = Body(...)) -> dict[str, str]:
        device_id = producer.bind_device_payload(json_object(body))
        return {"device_id": str(device_id)}

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

    @app.get("/v1/messages/{message_id}", dependencies=[Depends(require("send"))])
    def status(message_id: str) -> dict[str, Any]:
        return message_view(_uuid(message_id, "message_id"))

    @app.get("/v1/users/{user_id}/inbox", dependencies=[Depends(require("send"))])
    def user_inbox(user_id: str, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        return inbox.page(user_id, limit, cursor)

    @app.post("/v1/users/{user_id}/inbox/read", dependencies=[Depends(require("send"))])
    def inbox_read(user_id: str, body: Any = Body(...)) -> dict[str, int]:
        ids = json_object(body).get("message_ids")
        if ids is not None and not isinstance(ids, list):
            raise InvalidInput("message_ids", "a list of message ids, or null for all")
        return {"marked": inbox.mark_read(user_id, ids)}

    @app.post("/v1/acks", dependencies=[Depends(require("device"))])
    def acks(body: Any = Body(...)) -> dict[str, int]:
        items = json_object(body).get("acks")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise InvalidInput("acks", "must be a list of {delivery_id, kind} objects")
        result = producer.ack_many(items)
        return {"accepted": result.accepted, "ignored": result.duplicate_or_unknown}

    return app
