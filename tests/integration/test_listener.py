"""The HTTP listener's limits over real sockets, one process and three workers: connections
per address, the deadline of a request head, and the PROXY protocol (``--http haproxy:``)."""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import announce_path, bdecode, compact_peers, get_request

from integration.process import Tracker
from integration.test_workers import Cluster
from integration.waiting import wait_for

pytestmark = pytest.mark.integration

HASH = bytes(range(20))


def make(tmp_path: Path, trackers: list[Tracker], workers: int, *args: str) -> Tracker:
    cls = Cluster if workers > 1 else Tracker
    tracker = cls(tmp_path, "--workers", str(workers), "--open", "--rate-limit", "0", *args)
    trackers.append(tracker)
    return tracker


def connect(tracker: Tracker, source: str) -> socket.socket:
    """A connection from ``source`` (any 127/8 address is local). One the server closes at
    once may already be reset when connect() returns: it is returned closed."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((source, 0))
    with contextlib.suppress(ConnectionResetError):
        s.connect(("127.0.0.1", tracker.port))
    return s


def closed_by_server(s: socket.socket, wait: float) -> bool:
    """Whether the server closed ``s`` (EOF or reset) within ``wait`` seconds."""
    if s.fileno() < 0:
        return True
    try:
        readable, _, _ = select.select([s], [], [], wait)
    except (OSError, ValueError):
        return True
    if not readable:
        return False
    try:
        return s.recv(65536) == b""
    except OSError:
        return True


def served(s: socket.socket, target: bytes = b"/health") -> bool:
    """Send one request on ``s``; whether an answer came back."""
    try:
        s.sendall(get_request(target))
        return s.recv(65536).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for s in opened:
        s.close()


@pytest.mark.parametrize("workers", [1, 3])
def test_connections_per_address_are_capped(
    tmp_path: Path, trackers: list[Tracker], sockets: list[socket.socket], workers: int
) -> None:
    tracker = make(tmp_path, trackers, workers, "--max-connections-per-ip", "4").start()
    held = [connect(tracker, "127.0.0.5") for _ in range(4)]
    sockets.extend(held)
    assert all(served(s, announce_path(HASH, 7000 + i)) for i, s in enumerate(held))
    for _ in range(6):  # whichever worker the kernel picks, the fifth is closed at once
        extra = connect(tracker, "127.0.0.5")
        sockets.append(extra)
        assert not served(extra)
    other = connect(tracker, "127.0.0.6")
    sockets.append(other)
    assert served(other)
    held[0].close()

    def one_more() -> bool:
        s = connect(tracker, "127.0.0.5")
        sockets.append(s)
        return served(s)

    wait_for(one_more, "a place freed by a closed connection")
    assert not one_more()


@pytest.mark.parametrize("workers", [1, 3])
def test_hundreds_of_idle_connections_from_one_address(
    tmp_path: Path, trackers: list[Tracker], sockets: list[socket.socket], workers: int
) -> None:
    """Thousands of idle connections from one address, scaled down to 200: with the default
    cap of 128, every connection past it is closed at once; those within it wait for their
    head, and are served when it comes (a header timeout longer than the test, so that a slow
    machine cannot cut them first)."""
    tracker = make(tmp_path, trackers, workers, "--header-timeout", "600").start()
    sockets.extend(connect(tracker, "127.0.0.7") for _ in range(200))
    closed: set[int] = set()

    def refused_all() -> bool:
        for i, s in enumerate(sockets):
            if i not in closed and closed_by_server(s, 0):
                closed.add(i)
        return len(closed) >= 72

    wait_for(refused_all, "72 connections refused")
    assert len(closed) == 72
    waiting = [s for i, s in enumerate(sockets) if i not in closed]
    assert all(served(s) for s in waiting)
    assert served(connect(tracker, "127.0.0.8"))


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("target", [b"/health", announce_path(HASH, 6881)])
def test_a_trickled_head_is_cut_at_the_header_timeout(
    tmp_path: Path,
    trackers: list[Tracker],
    sockets: list[socket.socket],
    workers: int,
    target: bytes,
) -> None:
    tracker = make(tmp_path, trackers, workers, "--header-timeout", "1").start()
    s = connect(tracker, "127.0.0.9")
    sockets.append(s)
    request = get_request(target, b"X-Padding: " + b"a" * 300)
    sent = 0
    while sent < len(request):
        try:
            s.send(request[sent : sent + 1])
        except OSError:
            break
        sent += 1
        if closed_by_server(s, 0.05):  # one byte every 50 ms: 1 s is about 20 bytes
            break
    assert sent < len(request), "the whole trickled head was accepted"
    assert closed_by_server(s, 5) or sent < len(request)
    assert tracker.scrape(HASH)[HASH][b"incomplete"] == 0  # the trickled announce was not served


class Proxied(Tracker):
    """A tracker behind a PROXY protocol sender: every connection starts with a PROXY line."""

    source = "192.0.2.1"

    def __init__(self, workdir: Path, *args: str) -> None:
        super().__init__(workdir, *args)
        at = self.args.index("--http") + 1
        self.args[at] = f"haproxy:tcp:{self.port}:interface=127.0.0.1"

    def start(self) -> Proxied:
        super().start()
        if "--workers" in self.args:
            workers = int(self.args[self.args.index("--workers") + 1])
            wait_for(
                lambda: self.log().count("FrontFactory (PROXY) starting") >= workers, "workers"
            )
        return self

    def raw(self, data: bytes, source: str | None = None) -> bytes:
        proxy = b"PROXY TCP4 %s 127.0.0.1 40000 %d\r\n" % (
            (source or self.source).encode(),
            self.port,
        )
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(proxy + data)
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks)

    def get(self, target: bytes) -> tuple[int, dict[str, str], bytes]:
        reply = self.raw(get_request(target, b"Connection: close"))
        head, _, body = reply.partition(b"\r\n\r\n")
        if not head:
            raise ConnectionError("closed without an answer")
        return int(head[9:12]), {}, body


@pytest.mark.parametrize("workers", [1, 3])
def test_proxy_protocol_gives_the_client_address(
    tmp_path: Path, trackers: list[Tracker], workers: int
) -> None:
    tracker = Proxied(
        tmp_path, "--workers", str(workers), "--open", "--max-connections-per-ip", "2"
    )
    trackers.append(tracker)
    tracker.start()
    tracker.raw(get_request(announce_path(HASH, 6881), b"Connection: close"), "198.51.100.7")
    reply: Any = tracker.raw(
        get_request(announce_path(HASH, 6882), b"Connection: close"), "198.51.100.8"
    )
    body = bdecode(reply.partition(b"\r\n\r\n")[2])
    assert compact_peers(body[b"peers"]) == [("198.51.100.7", 6881)]
    # twisted.web's requests see the same address (the fast path hands /health over)
    assert tracker.raw(get_request(b"/health", b"Connection: close")).startswith(b"HTTP/1.1 200")
    # a client without the PROXY header is not served
    with socket.create_connection(("127.0.0.1", tracker.port), timeout=10) as s:
        s.sendall(get_request(b"/health"))
        assert closed_by_server(s, 5)


@pytest.mark.parametrize("workers", [1, 3])
def test_proxied_connections_count_under_the_client_address(
    tmp_path: Path, trackers: list[Tracker], sockets: list[socket.socket], workers: int
) -> None:
    tracker = Proxied(tmp_path, "--workers", str(workers), "--max-connections-per-ip", "2")
    trackers.append(tracker)
    tracker.start()

    def proxied(source: str) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", tracker.port), timeout=10)
        s.sendall(b"PROXY TCP4 %s 127.0.0.1 40000 %d\r\n" % (source.encode(), tracker.port))
        sockets.append(s)
        return s

    held = [proxied("198.51.100.7") for _ in range(2)]
    assert all(served(s) for s in held)
    assert not served(proxied("198.51.100.7"))  # all from one proxy, but one client: capped
    assert served(proxied("198.51.100.8"))
