"""Queue `maintenance`: the periodic sweep that re-publishes anything stuck (run by beat)."""

from __future__ import annotations

from config.celery_app import MAINTENANCE_SWEEP, app
from notifier.pipeline.sweep import sweep as run_sweep


@app.task(name=MAINTENANCE_SWEEP)
def sweep() -> dict[str, int]:
    return run_sweep().__dict__
