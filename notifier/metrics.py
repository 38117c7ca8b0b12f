"""Prometheus metrics: what each process did, for operators to graph and alert on.

Workers fork (Celery prefork), so when NOTIFIER_METRICS_PORT is set a worker keeps its
children's samples in PROMETHEUS_MULTIPROC_DIR and serves their sum on that port; the API
serves its own at GET /metrics together with the broker's queue depths.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

OUTCOMES = Counter(
    "notifier_delivery_outcomes",
    "Provider and carrier answers per attempt, by outcome and code",
    ["channel", "provider", "outcome", "code"],
)
FALLBACKS = Counter(
    "notifier_fallbacks", "Steps started because an earlier one was not confirmed", ["channel"]
)
ACKS = Counter("notifier_acks", "Device receipts recorded", ["kind"])
PROVIDER_SECONDS = Histogram(
    "notifier_provider_seconds",
    "Time of one batch of provider calls (push) or carrier submissions (SMS)",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SMS_PARTS = Counter("notifier_sms_parts", "SMS parts the carrier took", ["template"])
SMS_COST = Counter("notifier_sms_cost", "Cost of the SMS the carrier took", ["template"])
TOPPED_UP = Counter(
    "notifier_batch_topped_up",
    "Deliveries a transactional task took from its lane's backlog, beyond its own",
    ["lane"],
)
FAN_OUT_WAITED = Counter(
    "notifier_fan_out_waited_seconds",
    "Seconds broadcast fan-outs waited for their lane's backlog to drain",
    ["lane"],
)
QUEUE_DEPTH = Gauge("notifier_queue_depth", "Tasks waiting in each broker queue", ["queue"])
GAVE_WAY = Counter(
    "notifier_bulk_gave_way_seconds",
    "Seconds bulk lanes held a batch back while transactional tasks waited",
    ["lane"],
)


def serve_worker_metrics(port: int) -> None:
    """Serve the sum over this worker's processes on `port`."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, addr="0.0.0.0", registry=registry)


def exposition() -> bytes:
    """This process's metrics, with the queue depths read now."""
    from prometheus_client import REGISTRY

    from notifier.queue_depth import queue_depths

    try:
        for queue, depth in queue_depths().items():
            QUEUE_DEPTH.labels(queue).set(depth)
    except Exception:  # the broker being away must not take the metrics page down
        QUEUE_DEPTH.clear()
    return bytes(generate_latest(REGISTRY))
