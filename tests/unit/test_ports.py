"""Ports picked for servers (test fixtures, `streamkit dev`, the Kafka nodes) lie below the
kernel's ephemeral range, which outgoing connections take their local ports from: a port
picked there could be given to a client between the pick and the server's bind."""
from __future__ import annotations

import socket
from pathlib import Path

from streamkit.devbroker import free_port, free_ports_in_a_row


def kernel_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_a_free_port_lies_below_the_ephemeral_range_and_can_be_bound():
    low, _high = kernel_range()
    for _ in range(20):
        port = free_port()
        assert 1024 < port < low
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_free_ports_in_a_row_can_all_be_bound_together():
    low, _high = kernel_range()
    for _ in range(20):
        base = free_ports_in_a_row(4)
        assert 1024 < base and base + 4 <= low
        sockets = [socket.socket() for _ in range(4)]
        try:
            for i, s in enumerate(sockets):
                s.bind(("127.0.0.1", base + i))
                s.listen()
        finally:
            for s in sockets:
                s.close()
