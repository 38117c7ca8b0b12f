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
    "Time of one provider call batch (push) or submit (SMS)",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SMS_PARTS = Counter("notifier_sms_parts", "SMS parts the carrier took", ["template"])
SMS_COST = Counter("notifier_sms_cost", "Cost of the SMS the carrier took", ["template"])
QUEUE_DEPTH = Gauge("notifier_queue_depth", "Tasks waiting in each broker queue", ["queue"])


def serve_worker_metrics(port: int) -> None:
    """Serve the sum over this worker's processes on `port`."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, addr="0.0.0.0", registry=registry)


def queue_depths() -> dict[str, int]:
    """Tasks waiting per queue, read from the broker (Redis lists, or the filesystem folder)."""
    from config.celery_app import QUEUES
    from config.settings import get_settings

    settings = get_settings()
    if settings.uses_filesystem_broker:
        folder = settings.broker_folder
        return {q: sum(1 for _ in folder.glob(f"*.{q}.msg")) for q in QUEUES}
    import redis

    client = redis.Redis.from_url(settings.broker, socket_connect_timeout=2, socket_timeout=2)
    try:
        prefix = settings.broker_key_prefix
        return {q: int(client.llen(f"{prefix}{q}")) for q in QUEUES}
    finally:
        client.close()


def exposition() -> bytes:
    """This process's metrics, with the queue depths read now."""
    from prometheus_client import REGISTRY

    try:
        for queue, depth in queue_depths().items():
            QUEUE_DEPTH.labels(queue).set(depth)
    except Exception:  # the broker being away must not take the metrics page down
        QUEUE_DEPTH.clear()
    return bytes(generate_latest(REGISTRY))
