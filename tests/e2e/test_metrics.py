"""Prometheus metrics: a worker serves its processes' sum on its port, the API its own."""

from __future__ import annotations

import requests

from notifier.demo.stack import WorkerSpec, free_port
from tests.e2e.conftest import final_view, wait_for
from tests.e2e.flows import bind, send


def scrape(url: str) -> str:
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response.text


def test_worker_and_api_metrics(stack):
    port = free_port()
    spec = WorkerSpec("metered", "push", concurrency=2, env=(("NOTIFIER_METRICS_PORT", str(port)),))
    stack.start_worker(spec)
    stack.wait_worker(spec.name)
    try:
        user, _, _ = bind(stack, "apns", "online")

        def counted() -> str | None:
            # two workers share the queue: send until one lands on the metered one
            final_view(stack, send(stack, user, "push_only").json()["message_id"])
            text = scrape(f"http://127.0.0.1:{port}/metrics")
            return text if "notifier_delivery_outcomes_total{" in text else None

        text = wait_for(counted, 30, "the metered worker to count an outcome")
        assert 'channel="push",code="-",outcome="sent",provider="apns"' in text
        assert "notifier_provider_seconds_bucket" in text
    finally:
        stack.kill(f"worker-{spec.name}")
    api = scrape(stack.url("api") + "/metrics")
    assert 'notifier_acks_total{kind="received"}' in api
    assert 'notifier_queue_depth{queue="push"}' in api
