"""`notifier serve` refuses a port another server listens on (granian would share it)."""

from __future__ import annotations

import socket

import pytest

from notifier.demo.stack import free_port
from notifier.serve import PortTaken, ensure_free


def test_a_port_with_a_listener_is_refused_naming_the_port() -> None:
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as granian listens
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(PortTaken, match=f"--port {port}"):
            ensure_free("127.0.0.1", port)


def test_a_free_port_passes() -> None:
    ensure_free("127.0.0.1", free_port())
