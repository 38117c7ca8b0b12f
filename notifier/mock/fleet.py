"""The simulated device fleet and its outbound callbacks.

A device (by token) is `online` (its app acks each push after a short delay), `opens` (acks,
and the user opens the notification a moment later), `offline` (never acks) or `uninstalled`
(the provider answers 410 / UNREGISTERED). A phone number is
`delivered`, `undelivered` or `illegal` at the carrier. Callbacks (acks, DLRs) go out from one
background thread in batches, as a real SDK and a real carrier would send them.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

DEVICE_BEHAVIOURS = ("online", "opens", "offline", "uninstalled")
NUMBER_BEHAVIOURS = ("delivered", "undelivered", "illegal")


@dataclass
class Registry:
    """Behaviour per key (token or phone number), with a default for keys never registered."""

    default: str
    allowed: tuple[str, ...]
    entries: dict[str, str] = field(default_factory=dict)

    def set(self, key: str, behaviour: str) -> None:
        if behaviour not in self.allowed:
            raise ValueError(f"behaviour must be one of {', '.join(self.allowed)}")
        self.entries[key] = behaviour

    def get(self, key: str) -> str:
        return self.entries.get(key, self.default)


# One encoder for every record: json.dumps with options builds a new encoder per call.
_encode_record = json.JSONEncoder(separators=(",", ":"), default=str).encode

# What `Recorder.push` keeps, one flat tuple of strings and numbers: the time, the body, the
# member of its JSON to show, how many fields and headers, the fields' names then their
# values, the headers' likewise (-1 headers: none given). Flat, because a tuple is untracked
# only once what it holds is, and the collector looks at a tuple's members after the tuple:
# each level of nesting waited for an older collection.
_Push = tuple[Any, ...]


class Recorder:
    """What the mock received, for tests to check exactly what reached a device: the latest
    `keep` requests, and how many came in all.

    Nothing kept is a container the garbage collector goes on walking. Kept as dicts, a
    record and its payload's and headers' dicts stayed in its sight: a mock's young
    collection walked every record kept since the last one, and each older collection all
    of them (40-60 ms, every request in flight stalled behind it, in the middle of the
    latencies the bench measures). `add` keeps a record as its JSON text, which is no
    container. A push (`push`, every request of a push mock) is kept as a tuple of strings,
    numbers and the request's body as bytes, decoded only when the record is read: writing
    its JSON cost ~6 µs a push against ~1.5, of a mock's ~50-100 µs per request, and the
    collector untracks such a tuple at the first young collection it meets."""

    def __init__(self, keep: int) -> None:
        self.items: deque[str | _Push] = deque(maxlen=keep)
        self.total = 0

    def add(self, **item: Any) -> None:
        self.items.append(_encode_record({"received_at": time.time(), **item}))
        self.total += 1

    def push(
        self, body: bytes, shown: str, headers: Mapping[str, str] | None = None, **fields: Any
    ) -> None:
        """A push as it came in; read back with `payload` = the body's JSON (None if it is
        none), or its member `shown` names ("" for the whole). `fields`: strings, numbers
        or None."""
        heads = headers if headers is not None else {}
        self.items.append(
            (time.time(), body, shown, len(fields), -1 if headers is None else len(heads),
             *fields, *fields.values(), *heads, *heads.values())
        )  # fmt: skip
        self.total += 1

    def forget(self) -> int:
        """Drop every record and restart the count; returns how many records were dropped."""
        dropped = len(self.items)
        self.items.clear()
        self.total = 0
        return dropped

    def query(self, key: str | None, value: str | None) -> list[dict[str, Any]]:
        # The admin route reads from a worker thread while the event loop keeps adding:
        # list() copies the deque in one step; decoding while iterating it would not.
        records = [_read(kept) for kept in list(self.items)]
        if key is None:
            return records
        return [i for i in records if str(i.get(key)) == value]


def _read(kept: str | _Push) -> dict[str, Any]:
    if isinstance(kept, str):
        return dict(json.loads(kept))
    at, body, shown, n, h = kept[:5]
    fields, heads = kept[5 : 5 + 2 * n], kept[5 + 2 * n :]
    record: dict[str, Any] = {"received_at": at, **dict(zip(fields[:n], fields[n:], strict=True))}
    if h >= 0:
        record["headers"] = dict(zip(heads[:h], heads[h:], strict=True))
    doc = json_or_none(body)
    record["payload"] = doc.get(shown) if shown and isinstance(doc, dict) else doc
    return record


def json_or_none(body: bytes) -> Any:
    """A request body's JSON; None when it is empty or not JSON."""
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


class Callbacks:
    """Posts JSON batches to a URL from one background thread; failed posts are retried later.

    Items wait in a time-ordered heap, so scheduling is cheap from any thread or event loop.
    Once the earliest item is due, the sender lingers `linger` seconds for more to fall due,
    as an SDK or a carrier gathers reports before it calls: at broadcast rates each post then
    carries a few hundred items instead of a few dozen, which is most of what the mock spends
    per push (~20 µs of the push's CPU went on callbacks) and of what the API spends per ack.
    """

    def __init__(
        self,
        url: str,
        key: str,
        wrap: Callable[[list[Any]], Any],
        retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0),
        batch: int = 200,
        linger: float = 0.05,
    ) -> None:
        self.url, self.key, self.wrap, self.retry_delays = url, key, wrap, retry_delays
        self.batch, self.linger = batch, linger
        self._heap: list[tuple[float, int, Any, int]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._http = Poster(url)
        self.sent = 0
        self.failed = 0
        threading.Thread(target=self._run, name="mock-callbacks", daemon=True).start()

    def later(self, delay: float, item: Any, tries: int = 0) -> None:
        entry = (time.monotonic() + delay, next(self._seq), item, tries)
        with self._cond:
            heapq.heappush(self._heap, entry)
            # The sender sleeps until the earliest item is due; waking it for a later one
            # (nearly every push: each ack is due `ack_delay` after its push) only costs
            # both threads a GIL hand-over.
            if self._heap[0] is entry:
                self._cond.notify()

    def _due(self) -> list[tuple[Any, int]]:
        with self._cond:
            while True:
                now = time.monotonic()
                if self._heap and self._heap[0][0] + self.linger <= now:
                    break
                wake = self._heap[0][0] + self.linger - now if self._heap else None
                self._cond.wait(wake)
            ready: list[tuple[Any, int]] = []
            while self._heap and self._heap[0][0] <= now and len(ready) < self.batch:
                _, _, item, tries = heapq.heappop(self._heap)
                ready.append((item, tries))
            return ready

    def _run(self) -> None:
        while True:
            self._post(self._due())

    def _post(self, batch: list[tuple[Any, int]]) -> None:
        body = json.dumps(self.wrap([item for item, _ in batch])).encode()
        try:
            self._http.post(body, {"authorization": f"Bearer {self.key}"})
            self.sent += len(batch)
        except (OSError, http.client.HTTPException) as exc:
            log.warning("callback to %s failed: %s", self.url, exc)
            for item, tries in batch:
                if tries < len(self.retry_delays):
                    self.later(self.retry_delays[tries], item, tries + 1)
                else:
                    self.failed += 1


class Poster:
    """JSON POSTs to one URL over one kept-alive HTTP/1.1 connection, reopened after any
    failure. requests spent ~0.5 ms of the mock's CPU per post (proxy and .netrc lookups,
    adapters, hooks); this is the plain exchange."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"callback url must be http://host[:port]/path, got {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = parts.path or "/"
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes, headers: dict[str, str]) -> None:
        """Raises OSError or HTTPException unless the answer is a 2xx. A kept-alive connection
        the server closed while idle fails the next request at once: that one is sent again
        on a fresh connection (a repeated ack or report is recorded once)."""
        headers = {**headers, "content-type": "application/json"}
        reused = self._conn is not None
        try:
            status, answer = self._exchange(body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            status, answer = self._exchange(body, headers)
        if not 200 <= status < 300:
            raise http.client.HTTPException(f"{self.path} answered {status}: {answer[:200]!r}")

    def _exchange(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self._conn.request("POST", self.path, body, headers)
            response = self._conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def device_receipts(behaviour: str, delivery_id: str | None, acks: Callbacks, delay: float) -> None:
    """What the app on a device reports for one push it was shown."""
    if not delivery_id or behaviour not in ("online", "opens"):
        return
    acks.later(delay, {"delivery_id": delivery_id, "kind": "received"})
    if behaviour == "opens":
        acks.later(delay * 2, {"delivery_id": delivery_id, "kind": "opened"})
