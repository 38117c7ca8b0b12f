"""Queue `maintenance`: the periodic sweep that re-publishes anything stuck (run by beat)."""

from __future__ import annotations

from config.celery_app import MAINTENANCE_SWEEP
from notifier.pipeline.sweep import sweep as run_sweep
from workers._task import task


@task(MAINTENANCE_SWEEP, retry_when_database_away=False)
def sweep() -> dict[str, int]:
    return run_sweep().__dict__
