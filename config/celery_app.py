"""The one Celery app: queues, routes by task name, and the delivery guarantees we rely on."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from celery import Celery
from kombu.entity import Queue

from config.settings import Settings, get_settings

# Task names are explicit and stable: routes, producers and replays refer to them by name.
PUSH_SEND = "notifier.push.send"
RECEIPTS_CHECK = "notifier.receipts.check"
RECEIPTS_DUE = "notifier.receipts.due"
SMS_SEND = "notifier.sms.send"
SMS_POLL = "notifier.sms.poll"
MAINTENANCE_SWEEP = "notifier.maintenance.sweep"
BROADCAST_FANOUT = "notifier.broadcast.fanout"

# Promotional traffic has lanes of its own, so transactional messages and one-time codes never
# wait behind a campaign: run dedicated workers for push/sms, and others for the bulk lanes.
QUEUES = ("push", "receipts", "sms", "maintenance", "push_bulk", "sms_bulk", "broadcast")
ROUTES = {
    PUSH_SEND: "push",
    RECEIPTS_CHECK: "receipts",
    RECEIPTS_DUE: "receipts",
    SMS_SEND: "sms",
    SMS_POLL: "sms",
    MAINTENANCE_SWEEP: "maintenance",
    BROADCAST_FANOUT: "broadcast",
}


def _transport_options(settings: Settings) -> dict[str, Any]:
    if settings.uses_filesystem_broker:
        folder = str(settings.broker_folder)
        return {
            "data_folder_in": folder,
            "data_folder_out": folder,
            "control_folder": str(settings.broker_folder / "control"),
            "polling_interval": settings.filesystem_broker_poll_seconds,
        }
    options: dict[str, Any] = {
        # A task not acked within this many seconds is handed to another worker (Redis).
        "visibility_timeout": settings.broker_visibility_timeout,
        # A producer facing a dead broker gives up within about a second instead of blocking
        # the caller: the message is committed, and the sweep publishes it once the broker is back.
        "max_retries": 2,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
        "socket_connect_timeout": 2,
    }
    if settings.broker_key_prefix:
        options["global_keyprefix"] = settings.broker_key_prefix
    return options


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery options; each non-default one carries its reason."""
    return {
        "broker_url": settings.broker,
        "broker_transport_options": _transport_options(settings),
        # Keep retrying the broker at start-up instead of crash-looping while it comes back.
        "broker_connection_retry_on_startup": True,
        # The database holds all state; results would only fill the broker.
        "task_ignore_result": True,
        "result_backend": None,
        # Only JSON crosses the broker: task arguments are ids, never pickled objects.
        "task_serializer": "json",
        "accept_content": ["json"],
        # Ack after the task body ran, and give the message back if the child process dies,
        # so a crash mid-task means redelivery; conditional claims make the rerun harmless.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One reserved message per process: a killed worker strands as little as possible.
        "worker_prefetch_multiplier": 1,
        "task_queues": [Queue(name) for name in QUEUES],
        "task_default_queue": "push",
        "task_routes": {name: {"queue": queue} for name, queue in ROUTES.items()},
        "beat_schedule": {
            "sweep": {"task": MAINTENANCE_SWEEP, "schedule": settings.sweep_interval_seconds},
        },
        "worker_hijack_root_logger": False,
        "enable_utc": True,
    }


def make_app(settings: Settings | None = None) -> Celery:
    """The worker-side app: configured from the environment, with every task module included."""
    from celery.signals import after_setup_logger, after_setup_task_logger, worker_process_init

    from notifier import logs

    # Celery configures the worker's handlers: phone numbers are masked on them.
    after_setup_logger.connect(lambda logger, **_: logs.mask_handlers(logger), weak=False)
    after_setup_task_logger.connect(lambda logger, **_: logs.mask_handlers(logger), weak=False)
    settings = settings or get_settings()
    if settings.metrics_port:
        _serve_metrics(settings)
    worker_process_init.connect(_warm_up, weak=False)
    app = app_for(settings)
    app.conf.include = [
        "workers.push",
        "workers.receipts",
        "workers.sms",
        "workers.maintenance",
        "workers.broadcast",
    ]
    return app


def _warm_up(**_: object) -> None:
    """Open the child's database pool (and a push child's provider tokens) before its first
    task, not during it: the first fallback SMS or one-time code after a quiet spell or a
    restart should not pay for the engine, the connection or loading a signing key."""
    from celery import current_app
    from sqlalchemy import text

    from notifier import heap
    from notifier.store.db import DATABASE_AWAY, get_engine, name_connections

    queues = sorted(current_app.amqp.queues.consume_from)
    name_connections(f"worker {','.join(queues)}")
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except DATABASE_AWAY:
        pass  # the database is away: the first task retries as usual
    if any(queue.startswith("push") for queue in queues):
        from notifier.providers.gateway import process_gateway

        try:
            process_gateway().warm()
        except Exception:  # a key that will not load fails each push, as it did before
            logging.getLogger(__name__).exception("push gateway not warmed at start")
    heap.settle()


def _serve_metrics(settings: Settings) -> None:
    """Children write their samples to a shared folder; the main process serves the sum.

    prometheus_client picks its multiprocess mode when first imported: the folder is set
    here, before anything imports it.
    """
    import os
    import shutil

    from celery.signals import worker_init

    folder = settings.home_path / "metrics" / str(os.getpid())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(folder))

    def serve(**_: Any) -> None:
        from notifier import metrics

        metrics.serve_worker_metrics(settings.metrics_port)

    worker_init.connect(serve, weak=False)


@lru_cache(maxsize=4)
def app_for(settings: Settings) -> Celery:
    """An app for these settings; producers publish through it by task name only."""
    if settings.uses_filesystem_broker:
        (settings.broker_folder / "control").mkdir(parents=True, exist_ok=True)
    app = Celery("notifier", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


app = make_app()
