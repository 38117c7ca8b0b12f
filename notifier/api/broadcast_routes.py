"""Broadcast routes: tag users, send one push to a segment, follow its progress."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from notifier import binding, broadcasts
from notifier.api.auth import require
from notifier.api.body import json_object, uuid_param


def broadcast_router() -> APIRouter:
    router = APIRouter()
    send = Depends(require("send"))

    @router.put("/v1/users/{user_id}/tags", dependencies=[send])
    def user_tags(user_id: str, body: Any = Body(...)) -> dict[str, Any]:
        chosen = binding.set_tags(user_id, json_object(body).get("tags"))
        return {"user_id": user_id, "tags": list(chosen)}

    @router.post("/v1/broadcasts", status_code=202, dependencies=[send])
    def broadcast(body: Any = Body(...)) -> dict[str, Any]:
        return broadcasts.send_broadcast_payload(json_object(body))

    @router.get("/v1/broadcasts/{broadcast_id}", dependencies=[send])
    def progress(broadcast_id: str) -> dict[str, Any]:
        return broadcasts.progress(uuid_param(broadcast_id, "broadcast_id"))

    return router
