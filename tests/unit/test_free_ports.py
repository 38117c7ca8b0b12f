"""Ports for a local stack are distinct: granian listens with SO_REUSEPORT, so a port handed
out twice would be shared silently by two servers."""

from __future__ import annotations

import socket

from notifier.demo.stack import free_ports


def test_the_ports_of_one_stack_are_distinct_and_free() -> None:
    for _ in range(50):
        ports = free_ports(4)
        assert len(set(ports)) == 4
    for port in free_ports(4):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # nothing holds it any more
