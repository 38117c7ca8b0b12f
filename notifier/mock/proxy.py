"""A fault-injecting TCP proxy for HTTP/2 (h2c) in front of a mock provider.

An ASGI app cannot cut its own connection, so connection-level faults live here:
- GOAWAY after N streams: the proxy tells the client GOAWAY with the last stream id it has
  forwarded, keeps relaying the answers of those streams, drops any newer stream the client
  still sends (the server never sees it, as RFC 9113 §6.8 promises for streams above the last
  id), and closes once the forwarded streams are answered — what APNs does when it rotates
  connections.
- abrupt drops after N streams: both sockets are reset mid-flight; requests forwarded but not
  yet answered are counted (`in_flight_at_drops`): only those may reach the server twice.
The proxy reads frame headers only (9 bytes: length, type, flags, stream id) and passes every
frame through unchanged, so HPACK state on both ends stays consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import threading
from dataclasses import dataclass, field

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x7
END_STREAM = 0x1


@dataclass(frozen=True)
class ProxyFaults:
    goaway_after: int = 0  # streams per connection before a GOAWAY (0: never)
    drop_after: int = 0  # streams per connection before an abrupt reset (0: never)
    jitter: float = 0.0  # each connection's threshold varies by up to this fraction
    seed: int | None = None


@dataclass
class ProxyStats:
    connections: int = 0
    streams: int = 0
    goaways: int = 0
    refused_streams: int = 0  # sent by the client after our GOAWAY, never forwarded
    drops: int = 0
    in_flight_at_drops: list[int] = field(default_factory=list)


def goaway_frame(last_stream_id: int, error_code: int = 0) -> bytes:
    payload = struct.pack("!II", last_stream_id & 0x7FFFFFFF, error_code)
    return struct.pack("!I", len(payload))[1:] + bytes([GOAWAY, 0]) + struct.pack("!I", 0) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, int, int, bytes]:
    """(type, flags, stream id, the whole frame as bytes)."""
    head = await reader.readexactly(9)
    length = int.from_bytes(head[:3], "big")
    body = await reader.readexactly(length) if length else b""
    stream_id = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
    return head[3], head[4], stream_id, head + body


class _Connection:
    def __init__(
        self, proxy: H2Proxy, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        self.proxy, self.stats = proxy, proxy.stats
        self.client_r, self.client_w = client_r, client_w
        self.forwarded: set[int] = set()
        self.done: set[int] = set()
        self.last_forwarded = 0
        self.goaway_sent = False
        self.draining = False
        # A client may open many streams before the server's SETTINGS arrive; a GOAWAY must
        # not overtake that first SETTINGS frame (RFC 9113 §3.4: it comes first).
        self.settings_relayed = False
        self.goaway_at = proxy.threshold(proxy.faults.goaway_after)
        self.drop_at = proxy.threshold(proxy.faults.drop_after)
        self.closed = asyncio.Event()

    async def run(self) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(
                self.proxy.upstream_host, self.proxy.upstream_port
            )
        except OSError:
            self.client_w.transport.abort()
            return
        self.up_w = up_w
        tasks = [
            asyncio.create_task(self._client_to_server(up_w)),
            asyncio.create_task(self._server_to_client(up_r)),
        ]
        await self.closed.wait()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _close(self, abort: bool) -> None:
        for writer in (self.client_w, self.up_w):
            if abort:
                writer.transport.abort()
            else:
                writer.close()
        self.closed.set()

    async def _client_to_server(self, up_w: asyncio.StreamWriter) -> None:
        try:
            up_w.write(await self.client_r.readexactly(len(PREFACE)))
            while True:
                ftype, _flags, sid, frame = await read_frame(self.client_r)
                if self.draining:
                    continue  # read and discard until the client closes: see _finish
                if sid and self.goaway_sent and sid > self.last_forwarded:
                    if ftype == HEADERS:
                        self.stats.refused_streams += 1
                    continue  # a stream above GOAWAY's last id: the server never sees it
                if ftype == HEADERS and sid not in self.forwarded:
                    self.forwarded.add(sid)
                    self.last_forwarded = max(self.last_forwarded, sid)
                    self.stats.streams += 1
                up_w.write(frame)
                await up_w.drain()
                self._maybe_fault()
        except (asyncio.IncompleteReadError, ConnectionError):
            self._close(abort=not self.draining)

    def _maybe_fault(self) -> None:
        opened = len(self.forwarded)
        if self.drop_at and opened >= self.drop_at and not self.closed.is_set():
            self.stats.drops += 1
            self.stats.in_flight_at_drops.append(len(self.forwarded - self.done))
            self._close(abort=True)
        elif (
            self.goaway_at
            and opened >= self.goaway_at
            and self.settings_relayed
            and not self.goaway_sent
        ):
            self.goaway_sent = True
            self.stats.goaways += 1
            self.client_w.write(goaway_frame(self.last_forwarded))

    async def _server_to_client(self, up_r: asyncio.StreamReader) -> None:
        try:
            while True:
                ftype, flags, sid, frame = await read_frame(up_r)
                if sid and (
                    ftype == RST_STREAM or (ftype in (HEADERS, DATA) and flags & END_STREAM)
                ):
                    self.done.add(sid)
                self.client_w.write(frame)
                await self.client_w.drain()
                if ftype == SETTINGS and not self.settings_relayed:
                    self.settings_relayed = True
                    self._maybe_fault()
                if self.goaway_sent and self.forwarded <= self.done:
                    await self._finish()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            self._close(abort=True)

    async def _finish(self) -> None:
        """Every stream up to GOAWAY's last id is answered: half-close towards the client and
        keep reading until it closes. Closing outright while the client still sends would
        make the kernel answer with RST, and an RST can destroy answers not yet read."""
        self.draining = True
        self.up_w.transport.abort()
        if self.client_w.can_write_eof():
            self.client_w.write_eof()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), timeout=5.0)
        self._close(abort=True)


class H2Proxy:
    def __init__(self, upstream_host: str, upstream_port: int, faults: ProxyFaults) -> None:
        self.upstream_host, self.upstream_port = upstream_host, upstream_port
        self.faults = faults
        self.stats = ProxyStats()
        self.rng = random.Random(faults.seed)

    def threshold(self, base: int) -> int:
        if not base or not self.faults.jitter:
            return base
        spread = base * self.faults.jitter
        return max(1, round(self.rng.uniform(base - spread, base + spread)))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        try:
            await _Connection(self, reader, writer).run()
        except asyncio.CancelledError:
            writer.transport.abort()  # the proxy is stopping

    async def serve(self, host: str, port: int, ready: threading.Event | None = None) -> None:
        server = await asyncio.start_server(self.handle, host, port)
        self.port = int(server.sockets[0].getsockname()[1])
        if ready is not None:
            ready.set()
        async with server:
            await server.serve_forever()


class ProxyThread:
    """Run an H2Proxy on its own event loop in a daemon thread (tests, demo)."""

    def __init__(self, upstream_port: int, faults: ProxyFaults, host: str = "127.0.0.1") -> None:
        self.proxy = H2Proxy(host, upstream_port, faults)
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="h2-proxy", daemon=True)
        self._task: asyncio.Task[None] | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._task = self.loop.create_task(self.proxy.serve("127.0.0.1", 0, self._ready))
        with contextlib.suppress(asyncio.CancelledError):
            self.loop.run_until_complete(self._task)
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def start(self) -> int:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self.proxy.port

    def stop(self) -> None:
        if self._task is not None:
            self.loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)
