"""The mocks' callback poster: one kept-alive connection, a clear failure on anything but 2xx,
and a fresh connection after a failure."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from notifier.mock.fleet import Callbacks, Poster


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.bodies: list[Any] = []
        self.peers: set[tuple[str, int]] = set()
        self.answer = 202
        self.drop_idle = False  # close each connection after answering, without saying so
        self.arrived = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the API and the mocks' servers answer
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.bodies.append(
            (self.path, self.headers["authorization"], self.headers["content-type"], body)
        )
        self.server.peers.add(self.client_address)
        self.send_response(self.server.answer)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
        self.close_connection = self.server.drop_idle
        self.server.arrived.set()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(server: Receiver, path: str = "/v1/acks") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def test_posts_share_one_connection(receiver: Receiver) -> None:
    poster = Poster(url(receiver))
    for i in range(3):
        poster.post(json.dumps({"n": i}).encode(), {"authorization": "Bearer k"})
    poster.close()
    assert [json.loads(b[3]) for b in receiver.bodies] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert {b[:3] for b in receiver.bodies} == {("/v1/acks", "Bearer k", "application/json")}
    assert len(receiver.peers) == 1


def test_an_answer_other_than_2xx_is_a_failure_naming_the_status(receiver: Receiver) -> None:
    receiver.answer = 503
    poster = Poster(url(receiver))
    with pytest.raises(http.client.HTTPException, match="/v1/acks answered 503"):
        poster.post(b"{}", {})
    poster.close()


def test_a_connection_the_server_dropped_while_idle_is_replaced_at_once(
    receiver: Receiver,
) -> None:
    receiver.drop_idle = True  # as a server's keep-alive timeout does
    poster = Poster(url(receiver))
    for i in range(3):
        poster.post(json.dumps({"n": i}).encode(), {})
    poster.close()
    assert [json.loads(b[3]) for b in receiver.bodies] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert len(receiver.peers) == 3


def test_a_server_that_is_gone_fails_the_post(receiver: Receiver) -> None:
    gone = url(receiver)
    receiver.shutdown()
    receiver.server_close()
    poster = Poster(gone)
    with pytest.raises(OSError):
        poster.post(b"{}", {})
    assert poster._conn is None


def test_a_url_that_is_not_plain_http_is_refused() -> None:
    with pytest.raises(ValueError, match="callback url must be http"):
        Poster("https://example.test/acks")


def test_callbacks_gather_items_due_together_into_one_post(receiver: Receiver) -> None:
    callbacks = Callbacks(url(receiver), "k", lambda items: {"acks": items}, linger=0.2)
    for i in range(20):
        callbacks.later(0.01, i)
    deadline = time.monotonic() + 5.0
    while callbacks.sent < 20 and time.monotonic() < deadline:  # counted once answered
        time.sleep(0.01)
    assert [json.loads(b[3]) for b in receiver.bodies] == [{"acks": list(range(20))}]
    assert callbacks.sent == 20
    callbacks._http.close()
