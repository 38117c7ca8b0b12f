"""The database's CPU by statement inside a worker of the full bench (`bench.run --statements`).

The broadcast worker is started with `-I bench.worker_statements` and NOTIFIER_BENCH_STATEMENTS
naming a directory: each of its processes counts the serving backend's CPU around every
statement it runs (bench.statements) and, after each task, writes its running totals to
`<directory>/<pid>.json`. The bench reads the totals before and after a phase and logs the
difference: what `bench.stages` shows for a stage run alone, here with the whole system running
beside it.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from celery.signals import task_postrun, worker_process_init

from bench.statements import StatementCosts

ENV = "NOTIFIER_BENCH_STATEMENTS"
_costs: StatementCosts | None = None
_installed = ExitStack()


def _install(**_: Any) -> None:
    global _costs
    _costs = _installed.enter_context(StatementCosts().installed())


def _write(**_: Any) -> None:
    where = os.environ.get(ENV)
    if _costs is None or not where:
        return
    totals = {
        label: [cost.runs, cost.seconds]
        for by_label in _costs.costs.values()
        for label, cost in by_label.items()
    }
    path = Path(where) / f"{os.getpid()}.json"
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps(totals))
    partial.replace(path)  # never read half-written


# Connected by call, not as decorators: Celery's signals are untyped.
worker_process_init.connect(_install, weak=False)
task_postrun.connect(_write, weak=False)


def read_totals(where: Path) -> dict[str, tuple[int, float]]:
    """Every process's totals so far, summed by statement: (runs, CPU seconds)."""
    summed: dict[str, tuple[int, float]] = {}
    for path in where.glob("*.json"):
        for label, (runs, seconds) in json.loads(path.read_text()).items():
            was = summed.get(label, (0, 0.0))
            summed[label] = (was[0] + runs, was[1] + seconds)
    return summed
