"""The `/_mock` control routes every mock shares: behaviours, records, health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, HTTPException

from notifier.mock.fleet import Callbacks, Recorder, Registry


def admin_router(registry: Registry, recorder: Recorder, callbacks: Callbacks | None) -> APIRouter:
    router = APIRouter(prefix="/_mock")

    @router.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.put("/behaviours")
    def set_behaviours(items: dict[str, str] = Body(..., embed=True)) -> dict[str, int]:
        try:
            for key, behaviour in items.items():
                registry.set(key, behaviour)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        return {"count": len(items)}

    @router.get("/received")
    def received(key: str | None = None, value: str | None = None) -> list[dict[str, Any]]:
        return recorder.query(key, value)

    @router.get("/stats")
    def stats() -> dict[str, int]:
        return {
            "received": len(recorder.items),
            "callbacks_sent": callbacks.sent if callbacks else 0,
            "callbacks_failed": callbacks.failed if callbacks else 0,
        }

    return router
