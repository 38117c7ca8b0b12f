"""The `/_mock` control routes every mock shares: behaviours, records, health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, HTTPException

from notifier.mock.faults import Faults
from notifier.mock.fleet import Callbacks, Recorder, Registry


def admin_router(
    registry: Registry,
    recorder: Recorder,
    callbacks: Callbacks | None,
    faults: Faults | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/_mock")

    @router.put("/faults")
    def set_faults(rules: list[Any] = Body(..., embed=True)) -> list[dict[str, Any]]:
        if faults is None:
            raise HTTPException(404, "this mock takes no faults")
        try:
            faults.replace(rules)
        except (TypeError, ValueError) as exc:
            raise HTTPException(422, str(exc)) from exc
        return faults.describe()

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

    @router.delete("/received")
    def forget() -> dict[str, int]:
        return {"forgotten": recorder.forget()}

    @router.get("/stats")
    def stats() -> dict[str, int]:
        return {
            "received": recorder.total,
            "kept": len(recorder.items),
            "callbacks_sent": callbacks.sent if callbacks else 0,
            "callbacks_failed": callbacks.failed if callbacks else 0,
            "faults_injected": faults.injected if faults else 0,
            "peak_held": faults.peak_held if faults else 0,
        }

    return router
