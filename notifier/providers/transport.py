"""HTTP transports on libcurl (pycurl): many requests in flight, connections reused.

APNs accepts only HTTP/2, and libcurl's multiplexing costs a fraction of the CPU of the
pure-Python HTTP/2 clients. The multi handle lives as long as the transport, so its connection
cache keeps the connection open across batches (APNs treats connect/disconnect churn as abuse).
Plain `http://` URLs (the mocks) use HTTP/2 with prior knowledge; `https://` negotiates h2 by ALPN.
`Http1Transport` is the same loop over a few kept-alive HTTP/1.1 connections, for APIs that
speak nothing newer (SMS carriers): a batch costs libcurl's share, not a Python client's per call.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import pycurl


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class HttpResponse:
    """A response, or `error` when none arrived (connection refused, reset, GOAWAY, timeout)."""

    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None

    def retry_after(self) -> float | None:
        """Seconds from a numeric Retry-After header (what APNs and FCM send), if any."""
        raw = self.headers.get("retry-after")
        try:
            return float(raw) if raw else None
        except ValueError:
            return None


class _Transfer:
    """One request on an easy handle. Handles are reused from batch to batch: setting one up
    costs more than the request's own share of the multiplexed exchange."""

    def __init__(self, index: int, curl: pycurl.Curl, request: HttpRequest) -> None:
        self.index = index
        self.body = io.BytesIO()
        self.headers: dict[str, str] = {}
        self.curl = curl
        curl.setopt(pycurl.URL, request.url)
        if request.method == "GET":
            # A reused handle keeps the last request's options: drop its custom method.
            curl.unsetopt(pycurl.CUSTOMREQUEST)
            curl.setopt(pycurl.HTTPGET, 1)
        else:
            curl.setopt(pycurl.CUSTOMREQUEST, request.method)
            curl.setopt(pycurl.POSTFIELDS, request.body)
        curl.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in request.headers.items()])
        curl.setopt(pycurl.WRITEDATA, self.body)
        curl.setopt(pycurl.HEADERFUNCTION, self._header)

    def _header(self, line: bytes) -> None:
        text = line.decode("latin-1").strip()
        if ":" in text:
            name, value = text.split(":", 1)
            self.headers[name.strip().lower()] = value.strip()

    def response(self, error: str | None) -> HttpResponse:
        if error is not None:
            return HttpResponse(None, error=error)
        status = int(self.curl.getinfo(pycurl.RESPONSE_CODE))
        return HttpResponse(status, self.headers, self.body.getvalue())


class CurlTransport:
    """Runs a batch of requests with at most `max_in_flight` of them open at once; the HTTP
    version and how requests share connections are the subclass's (`_configure`, `_prepare`)."""

    def __init__(self, max_in_flight: int = 100, timeout: float = 10.0) -> None:
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self._multi = pycurl.CurlMulti()
        self._configure(self._multi)
        self._idle: list[pycurl.Curl] = []

    def _configure(self, multi: pycurl.CurlMulti) -> None:
        raise NotImplementedError

    def _prepare(self, curl: pycurl.Curl, url: str) -> None:
        raise NotImplementedError

    def _handle(self, url: str) -> pycurl.Curl:
        """An easy handle for a request to `url`; libcurl keeps a handle's options between
        requests, so only the per-URL ones are set again."""
        if self._idle:
            curl = self._idle.pop()
        else:
            curl = pycurl.Curl()
            curl.setopt(pycurl.TIMEOUT_MS, int(self.timeout * 1000))
            curl.setopt(pycurl.CONNECTTIMEOUT_MS, int(min(self.timeout, 5.0) * 1000))
            curl.setopt(pycurl.NOSIGNAL, 1)
            # libcurl gives every handle a 64 kB upload buffer by default; a push body is at
            # most 4 kB, and a push process keeps a handle per stream (1,000): 35 MB of its
            # RSS went on buffers it never filled. 16 kB is the least libcurl takes.
            curl.setopt(pycurl.UPLOAD_BUFFERSIZE, 16384)
        self._prepare(curl, url)
        return curl

    def perform(self, requests: Sequence[HttpRequest]) -> list[HttpResponse]:
        """Send all requests; the answer list is in the same order as the requests."""
        results: list[HttpResponse | None] = [None] * len(requests)
        pending = list(enumerate(requests))
        pending.reverse()
        active: dict[pycurl.Curl, _Transfer] = {}
        while pending or active:
            while pending and len(active) < self.max_in_flight:
                index, request = pending.pop()
                transfer = _Transfer(index, self._handle(request.url), request)
                active[transfer.curl] = transfer
                self._multi.add_handle(transfer.curl)
            self._drive()
            for curl, error in self._finished():
                transfer = active.pop(curl)
                results[transfer.index] = transfer.response(error)
                self._multi.remove_handle(curl)
                self._idle.append(curl)
        return [r if r is not None else HttpResponse(None, error="lost") for r in results]

    def _drive(self) -> None:
        self._multi.select(0.05)
        while True:
            code, _running = self._multi.perform()
            if code != pycurl.E_CALL_MULTI_PERFORM:
                break

    def _finished(self) -> list[tuple[pycurl.Curl, str | None]]:
        done: list[tuple[pycurl.Curl, str | None]] = []
        while True:
            _queued, ok, failed = self._multi.info_read()
            done.extend((curl, None) for curl in ok)
            done.extend((curl, f"curl error {num}: {msg}") for curl, num, msg in failed)
            if _queued == 0:
                return done

    def close(self) -> None:
        for curl in self._idle:
            curl.close()
        self._idle.clear()
        self._multi.close()


class Http2Transport(CurlTransport):
    """Every request a stream on one connection per host."""

    def _configure(self, multi: pycurl.CurlMulti) -> None:
        multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
        multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, 1)
        # libcurl opens at most 100 streams on a connection unless told otherwise
        # (CURLMOPT_MAX_CONCURRENT_STREAMS), whatever the server grants: a batch of 500 went
        # out 100 at a time, one provider round trip per hundred. The server's own
        # SETTINGS_MAX_CONCURRENT_STREAMS still caps it.
        multi.setopt(pycurl.M_MAX_CONCURRENT_STREAMS, self.max_in_flight)

    def _prepare(self, curl: pycurl.Curl, url: str) -> None:
        version = (
            pycurl.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
            if url.startswith("http://")
            else pycurl.CURL_HTTP_VERSION_2TLS
        )
        curl.setopt(pycurl.HTTP_VERSION, version)
        # Wait for the existing connection to multiplex on instead of opening a new one.
        curl.setopt(pycurl.PIPEWAIT, 1)


class Http1Transport(CurlTransport):
    """The same batch loop on HTTP/1.1: one request per connection at a time, up to
    `max_in_flight` connections to a host, each kept alive across batches."""

    def _configure(self, multi: pycurl.CurlMulti) -> None:
        multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_NOTHING)
        multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, self.max_in_flight)
        multi.setopt(pycurl.M_MAXCONNECTS, self.max_in_flight)

    def _prepare(self, curl: pycurl.Curl, url: str) -> None:
        curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
