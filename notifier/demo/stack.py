"""Run the whole system locally as real processes: mock providers, the API, one worker per queue.

Used by `notifier demo` and by the e2e tests. Every child runs in its own process group so
`stop()` takes down exactly what `start()` began (Celery's pool children included), and nothing
else on the machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests

from config.settings import get_settings
from notifier.demo.credentials import write_credentials


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    queues: str
    concurrency: int = 1
    beat: bool = False
    env: tuple[tuple[str, str], ...] = ()  # extra environment for this worker only
    args: tuple[str, ...] = ()  # extra worker options, e.g. ("-I", "bench.noop")
    nice: int = 0  # bulk lanes run niced so transactional work gets the CPU first


# One worker per queue, as the Procfile runs them; beat rides with the maintenance worker here.
DEFAULT_WORKERS = (
    # One worker per channel serves both lanes here; production runs the bulk lanes apart.
    WorkerSpec("push", "push,push_bulk,broadcast"),
    WorkerSpec("sms", "sms,sms_bulk"),
    WorkerSpec("receipts", "receipts,maintenance", beat=True),
)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """n distinct ports free now. The probe sockets stay open until all are picked: a port
    handed out twice would not fail to bind, because granian listens with SO_REUSEPORT, and
    the kernel would split connections between the two servers (seen once in CI: the
    mock's admin route answered 404 by another server on its port)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    log_offset: int = 0  # where this run's lines start in a log shared with earlier runs
    spec: WorkerSpec | None = None
    expected_exit: bool = False  # killed or stopped on purpose: not for the supervisor


@dataclass
class Stack:
    home: Path
    overrides: Mapping[str, str] = field(default_factory=dict)
    workers: Sequence[WorkerSpec] = DEFAULT_WORKERS
    ports: dict[str, int] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    # Restart a worker that dies on its own, as a process manager (systemd, a Procfile runner)
    # would in production: Celery's Redis transport can exit on a lost connection.
    supervise: bool = True
    restarts: int = 0
    _saved_env: dict[str, str] = field(default_factory=dict)
    _supervisor: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    # --- set-up ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Ports, credentials, schema and API keys; this process then speaks to the same stack."""
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        names = ("api", "apns", "fcm", "carrier")
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        env = {
            "NOTIFIER_HOME": str(self.home),
            "NOTIFIER_API_URL": self.url("api"),
            "NOTIFIER_APNS_URL": self.url("apns"),
            "NOTIFIER_FCM_URL": self.url("fcm"),
            "NOTIFIER_CARRIER_URL": self.url("carrier"),
            "NOTIFIER_CARRIER_ACCESS_KEY": "demo-access-key",
            "NOTIFIER_SMS_DEFAULT_SIGNATURE": "DemoBank",
            # Demo and tests wait seconds, not the production minimum of 15 s.
            "NOTIFIER_RECEIPT_DEADLINE_MIN": "1",
            "NOTIFIER_SWEEP_INTERVAL_SECONDS": "2",
            "NOTIFIER_RETRY_BASE_SECONDS": "0.2",
            "NOTIFIER_RETRY_CAP_SECONDS": "2",
            "NOTIFIER_MOCK_DLR_RETRY_DELAYS": "0.5,1,2",
        }
        env.update(write_credentials(self.home / "keys", f"{self.url('fcm')}/token"))
        env.update(self.overrides)
        self._apply_env(env)
        from notifier.store import apikeys, migrate

        migrate.upgrade(get_settings().db_url)
        self.keys = {
            scope: apikeys.create_key(f"stack-{scope}", [scope])
            for scope in ("device", "send", "carrier", "admin")
        }
        self.env.update(
            {
                "NOTIFIER_MOCK_DEVICE_KEY": self.keys["device"],
                "NOTIFIER_MOCK_CARRIER_KEY": self.keys["carrier"],
            }
        )

    def _apply_env(self, env: dict[str, str]) -> None:
        self._saved_env = {k: os.environ[k] for k in env if k in os.environ}
        self.env = dict(env)
        os.environ.update(env)
        get_settings.cache_clear()

    def _restore_env(self) -> None:
        for key in self.env:
            if key in self._saved_env:
                os.environ[key] = self._saved_env[key]
            else:
                os.environ.pop(key, None)
        get_settings.cache_clear()

    # --- processes ------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], extra: Mapping[str, str] | None = None) -> Child:
        log_path = self.home / "logs" / f"{name}.log"
        log_file = log_path.open("ab")
        offset = log_file.tell()
        process = subprocess.Popen(
            argv,
            env={**os.environ, **self.env, **(extra or {})},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        child = Child(name, process, log_path, log_file, offset)
        self.children.append(child)
        return child

    def start(self) -> None:
        self.start_servers(("apns", "fcm", "carrier", "api"), list(self.workers))
        if self.supervise:
            self._stopping.clear()
            self._supervisor = threading.Thread(target=self._supervise, daemon=True)
            self._supervisor.start()

    def start_servers(self, names: Sequence[str], workers: Sequence[WorkerSpec] = ()) -> None:
        """Start these servers (and workers) and wait until each answers; stop all on failure."""
        try:
            for name in names:
                self.start_server(name)
            # kombu's filesystem transport rewrites its exchange table file without a lock:
            # workers declaring their queues at the same moment can read it half-written and
            # exit (seen in CI). On that broker each worker is ready before the next starts.
            one_at_a_time = get_settings().uses_filesystem_broker
            for spec in workers:
                self.start_worker(spec)
                if one_at_a_time:
                    self.wait_worker(spec.name)
            for name in names:
                self._wait_http(
                    name, self.url(name) + ("/healthz" if name == "api" else "/_mock/health")
                )
            for spec in workers:
                self.wait_worker(spec.name)
        except BaseException:
            self.stop()
            raise

    def start_server(self, name: str) -> Child:
        argv = [
            sys.executable,
            "-m",
            "notifier.cli",
            "serve",
            name,
            "--port",
            str(self.ports[name]),
        ]
        return self._spawn(name, argv)

    def start_worker(self, spec: WorkerSpec) -> Child:
        argv = ["nice", "-n", str(spec.nice)] if spec.nice else []
        argv += [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config.celery_app",
            "worker",
            "-Q",
            spec.queues,
            "-n",
            f"{spec.name}@%h",
            "-c",
            str(spec.concurrency),
            "-l",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        if spec.beat:
            argv += ["-B", "-s", str(self.home / "celerybeat-schedule")]
        argv += list(spec.args)
        child = self._spawn(f"worker-{spec.name}", argv, dict(spec.env))
        child.spec = spec
        return child

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            latest = {c.name: c for c in self.children if c.spec is not None}
            for child in latest.values():
                if child.process.poll() is not None and not child.expected_exit and child.spec:
                    child.expected_exit = True
                    self.restarts += 1
                    self.start_worker(child.spec)

    def _child(self, name: str) -> Child:
        return next(c for c in reversed(self.children) if c.name == name)

    def _check_alive(self, name: str) -> None:
        child = self._child(name)
        if child.process.poll() is not None:
            raise RuntimeError(f"{name} exited with {child.process.returncode}:\n{self.tail(name)}")

    def _wait_http(self, name: str, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(name)
            try:
                if requests.get(url, timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not answer {url} within {timeout}s:\n{self.tail(name)}")

    def wait_worker(self, name: str, timeout: float = 60.0) -> None:
        child = self._child(f"worker-{name}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(child.name)
            if b" ready." in child.log_path.read_bytes()[child.log_offset :]:
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker {name} not ready within {timeout}s:\n{self.tail(child.name)}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal one child's whole process group (e.g. SIGKILL a worker mid-batch)."""
        child = self._child(name)
        child.expected_exit = True
        if child.process.poll() is None:
            os.killpg(child.process.pid, sig)
        child.process.wait(timeout=10)

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.home / "logs" / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
            self._supervisor = None
        for child in self.children:
            child.expected_exit = True
        for child in self.children:
            if child.process.poll() is None:
                os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children:
            try:
                child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait(timeout=10)
            child.log_file.close()
        self.children.clear()
        self._restore_env()

    def __enter__(self) -> Stack:
        self.prepare()
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- talking to the API ---------------------------------------------------------------

    def api(self, method: str, path: str, scope: str = "send", **kwargs: Any) -> requests.Response:
        headers = {"authorization": f"Bearer {self.keys[scope]}", **kwargs.pop("headers", {})}
        return requests.request(
            method, self.url("api") + path, headers=headers, timeout=30, **kwargs
        )

    def set_behaviours(self, mock: str, items: Mapping[str, str]) -> None:
        response = requests.put(
            f"{self.url(mock)}/_mock/behaviours", json={"items": dict(items)}, timeout=10
        )
        response.raise_for_status()

    def set_faults(self, mock: str, rules: list[dict[str, Any]]) -> None:
        response = requests.put(f"{self.url(mock)}/_mock/faults", json={"rules": rules}, timeout=5)
        response.raise_for_status()

    def clear_received(self, mock: str) -> None:
        requests.delete(f"{self.url(mock)}/_mock/received", timeout=10).raise_for_status()

    def received(
        self, mock: str, key: str | None = None, value: str | None = None
    ) -> list[dict[str, Any]]:
        params = {"key": key, "value": value} if key else {}
        response = requests.get(f"{self.url(mock)}/_mock/received", params=params, timeout=10)
        response.raise_for_status()
        return list(response.json())
