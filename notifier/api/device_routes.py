"""What a mobile app calls (bind its token, report receipts), and the device keys it uses."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from starlette.concurrency import run_in_threadpool

from notifier import binding, producer
from notifier.api.auth import Unauthorized, require
from notifier.api.body import json_object
from notifier.domain.errors import InvalidInput
from notifier.domain.requests import user_id as check_user_id
from notifier.store import apikeys
from notifier.store.apikeys import Caller


def device_router() -> APIRouter:
    router = APIRouter()
    device, send = Depends(require("device")), Depends(require("send"))

    @router.post("/v1/devices", status_code=201)
    def bind_device(body: Any = Body(...), caller: Caller = device) -> dict[str, str]:
        payload = json_object(body)
        if caller.user_id is not None and payload.get("user_id") != caller.user_id:
            raise Unauthorized(403, "this device key binds devices of its own user only")
        return {"device_id": str(binding.bind_device_payload(payload))}

    @router.post("/v1/users/{user_id}/device-keys", status_code=201, dependencies=[send])
    def device_key(user_id: str) -> dict[str, str]:
        """A device key for one user's app: it binds and acks for that user only."""
        uid = check_user_id(user_id)
        return {"api_key": apikeys.create_key(f"device:{uid}", ["device"], uid), "user_id": uid}

    @router.post("/v1/acks")
    async def acks(body: Any = Body(...), caller: Caller = device) -> dict[str, int]:
        items = ack_items(json_object(body))
        if items is None:
            raise InvalidInput("acks", "must be a list of {delivery_id, kind} objects")
        # A key bound to a user acknowledges that user's pushes only; others count as ignored.
        # The API's busiest path: one hand-off to a thread for the database work, no more.
        result = await run_in_threadpool(producer.ack_many, items, only_user=caller.user_id)
        return {"accepted": result.accepted, "ignored": result.duplicate_or_unknown}

    return router


def ack_items(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The receipts of an acks body: a list of objects, or None when `acks` is not one."""
    items = body.get("acks")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return None
    return items
