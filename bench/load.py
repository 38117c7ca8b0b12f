"""A bare HTTP/2 load generator against the mock APNs: the same libcurl transport and stream
concurrency as the push worker, and no notifier code in the loop (figures M and F)."""

from __future__ import annotations

import multiprocessing
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

from notifier.providers.apns import ApnsCredentials, ProviderToken
from notifier.providers.transport import Http2Transport, HttpRequest

BODY = b'{"aps":{"alert":{"title":"bench","body":"load"}}}'


def _requests(url: str, token: str, topic: str, n: int) -> list[HttpRequest]:
    headers = {
        "authorization": f"bearer {token}",
        "apns-topic": topic,
        "apns-push-type": "alert",
        "content-type": "application/json",
    }
    return [
        HttpRequest("POST", f"{url}/3/device/{secrets.token_hex(32)}", headers, BODY)
        for _ in range(n)
    ]


def _run(url: str, creds: ApnsCredentials, n: int, concurrency: int) -> tuple[float, float, int]:
    """Send n requests; returns (wall seconds, CPU seconds, answered 200)."""
    token = ProviderToken(creds).current()
    batch = _requests(url, token, creds.topic, n)
    transport = Http2Transport(concurrency, 30.0)
    cpu, wall = time.process_time(), time.perf_counter()
    answers = transport.perform(batch)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    transport.close()
    return wall, cpu, sum(1 for a in answers if a.status == 200)


def credentials(key_file: str, key_id: str, team_id: str, topic: str) -> ApnsCredentials:
    return ApnsCredentials(Path(key_file).read_text(), key_id, team_id, topic)


def stack_credentials(env: Mapping[str, str]) -> ApnsCredentials:
    """The APNs credentials a running stack's environment names (demo.stack.Stack.env)."""
    return credentials(
        env["NOTIFIER_APNS_KEY_FILE"],
        env["NOTIFIER_APNS_KEY_ID"],
        env["NOTIFIER_APNS_TEAM_ID"],
        env["NOTIFIER_APNS_TOPIC"],
    )


def client_cpu(
    url: str, creds: ApnsCredentials, n: int, concurrency: int, runs: int
) -> tuple[float, int]:
    """F's raw parts: (CPU seconds, requests answered 200) of `runs` runs of the client loop
    sending n requests each. Each run opens a connection of its own (counted: a few hundred
    µs against a second of requests) and signs its token outside the timed part; one short
    unmeasured run goes first, so the mock has served this process before any is timed."""
    _run(url, creds, min(n, 500), concurrency)
    spent, answered = 0.0, 0
    for _ in range(runs):
        _, cpu, ok = _run(url, creds, n, concurrency)
        spent, answered = spent + cpu, answered + ok
    return spent, answered


def _worker(args: tuple[str, ApnsCredentials, int, int]) -> tuple[float, float, int]:
    return _run(*args)


def mock_capacity(
    url: str, creds: ApnsCredentials, n: int, concurrency: int, clients: int = 2
) -> float:
    """M: requests per second the mock answers, driven by `clients` client processes."""
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        results = pool.map(_worker, [(url, creds, n // clients, concurrency)] * clients)
    # the clients run side by side: the slowest one's time is the run's time
    return sum(ok for _, _, ok in results) / max(wall for wall, _, _ in results)
