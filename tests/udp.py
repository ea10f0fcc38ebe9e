"""Datagrams a test sends itself over the loopback, for programs that count packets (imported by the scripts the
tests run in private network namespaces too)."""

from __future__ import annotations

import socket


def send_to_self(n: int) -> None:
    """Send ``n`` one-byte UDP datagrams to a socket of this process on 127.0.0.1, each received before the next."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        for _ in range(n):
            tx.sendto(b"x", rx.getsockname())
            rx.recv(10)
