"""SMS routes: the template/signature catalogue, previews, opt-outs and carrier webhooks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from notifier import catalog, producer
from notifier.api.auth import require
from notifier.api.body import json_object, json_objects
from notifier.domain.errors import InvalidInput


def _str(body: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidInput(name, "is required and must be a string")
    return value


def sms_router() -> APIRouter:
    router = APIRouter()
    router.include_router(catalogue_router())
    router.include_router(delivery_router())
    return router


def catalogue_router() -> APIRouter:
    """Templates and signatures: added and edited by admins, reviewed, previewed."""
    router = APIRouter(prefix="/v1/sms")
    admin, send = Depends(require("admin")), Depends(require("send"))

    @router.post("/templates", status_code=201, dependencies=[admin])
    def add_template(body: Any = Body(...)) -> dict[str, Any]:
        b = json_object(body)
        code = str(_str(b, "code"))
        catalog.add_template(
            code, str(_str(b, "kind")), str(_str(b, "content")), b.get("max_param_length")
        )
        return catalog.show_template(code)

    @router.get("/templates", dependencies=[send])
    def list_templates() -> list[dict[str, Any]]:
        return catalog.list_templates()

    @router.get("/templates/{code}", dependencies=[send])
    def show_template(code: str) -> dict[str, Any]:
        return catalog.show_template(code)

    @router.patch("/templates/{code}", dependencies=[admin])
    def edit_template(code: str, body: Any = Body(...)) -> dict[str, Any]:
        b = json_object(body)
        return catalog.edit_template(
            code, _str(b, "content", False), _str(b, "kind", False), b.get("max_param_length")
        )

    @router.post("/signatures", status_code=201, dependencies=[admin])
    def add_signature(body: Any = Body(...)) -> dict[str, Any]:
        name = str(_str(json_object(body), "name"))
        catalog.add_signature(name)
        return catalog.show_signature(name)

    @router.get("/signatures", dependencies=[send])
    def list_signatures() -> list[dict[str, Any]]:
        return catalog.list_signatures()

    @router.post("/{kind}/{key}/review", dependencies=[admin])
    def review(kind: str, key: str, body: Any = Body(...)) -> dict[str, Any]:
        if kind not in ("templates", "signatures"):
            raise InvalidInput("kind", "templates or signatures")
        b = json_object(body)
        decision = b.get("decision")
        if decision not in ("approve", "reject"):
            raise InvalidInput("decision", "approve or reject")
        catalog.review(kind[:-1], key, decision == "approve", _str(b, "reason", False))
        return catalog.show_template(key) if kind == "templates" else catalog.show_signature(key)

    @router.post("/preview", dependencies=[send])
    def preview(body: Any = Body(...)) -> dict[str, Any]:
        b = json_object(body)
        params = b.get("params") or {}
        if not isinstance(params, dict):
            raise InvalidInput("params", "must be an object")
        return catalog.preview(
            str(_str(b, "template")), params, str(_str(b, "signature")), _str(b, "phone", False)
        )

    return router


def delivery_router() -> APIRouter:
    """Opt-outs, and the carrier's webhooks (delivery reports, inbound replies)."""
    router = APIRouter(prefix="/v1/sms")
    send, carrier = Depends(require("send")), Depends(require("carrier"))

    @router.put("/optouts/{phone}", dependencies=[send])
    def opt_out(phone: str) -> dict[str, str]:
        return {"phone": catalog.opt_out(phone, "api"), "status": "opted_out"}

    @router.delete("/optouts/{phone}", dependencies=[send])
    def opt_in(phone: str) -> dict[str, Any]:
        return {"removed": catalog.opt_in(phone)}

    @router.post("/receipts", dependencies=[carrier])
    def receipts(body: Any = Body(...)) -> dict[str, Any]:
        producer.record_delivery_reports(json_objects(body, "report"))
        # The carrier retries anything not answered with code 0.
        return {"code": 0, "msg": "ok"}

    @router.post("/inbound", dependencies=[carrier])
    def inbound(body: Any = Body(...)) -> dict[str, Any]:
        catalog.record_inbound(json_objects(body, "message"))
        return {"code": 0, "msg": "ok"}

    return router
