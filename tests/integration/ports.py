"""Ports for the servers the integration tests start (trackers, web seeds, other clients).

A port is chosen at random below the kernel's ephemeral range and checked free for both TCP
and UDP. Below that range the kernel never hands the port to another process's outgoing
connection or unbound UDP socket in the moment between the check and the server's bind, as
it may with a port from ``bind(0)``; and one number serves a tracker's HTTP and UDP alike."""

from __future__ import annotations

import random
import socket
from pathlib import Path

PICK = random.SystemRandom()  # not the random module's state, which tests may seed
LOWEST = 10_000  # clear of the well-known and registered services most machines run
RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_low() -> int:
    try:
        return int(RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bindable(host: str, port: int) -> int | None:
    """``port`` (a chosen one for 0) if both a TCP and a UDP socket can bind it on ``host``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with (
        socket.socket(family, socket.SOCK_STREAM) as tcp,
        socket.socket(family, socket.SOCK_DGRAM) as udp,
    ):
        try:
            tcp.bind((host, port))
            port = tcp.getsockname()[1]
            udp.bind((host, port))
        except OSError:
            return None
        return port


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing is bound to on ``host``, for TCP and for UDP."""
    low = _ephemeral_low()
    for _ in range(200):
        port = PICK.randrange(LOWEST, low) if low - LOWEST >= 1000 else 0
        found = _bindable(host, port)
        if found is not None:
            return found
    raise AssertionError(f"no free port on {host}")
