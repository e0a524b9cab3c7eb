"""Backpressure over a real socket: a client that pipelines announces and never reads the
answers holds only a bounded amount of the server's memory, because the front stops reading
its requests while more than 64 KiB of answers wait to be sent (and the kernel's send buffer of
the connection is kept small, so that it is not megabytes of answers first)."""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Generator
from typing import Any

import pytest
import pytest_twisted
from helpers import FakeStore, announce_path, build_stack, get_request
from twisted.internet import reactor
from twisted.internet.defer import succeed
from twisted.internet.task import deferLater

from weightless.web.front import SEND_BUFFER, FrontProtocol

pytestmark = pytest.mark.integration

HASH = bytes(range(20))
BUDGET = 8 << 20  # bytes the client tries to push; without backpressure all of them get in
WRITE_BUFFER = 64 << 10  # the transport's bufferSize: where it pauses its producer


def pending_writes(protocol: FrontProtocol) -> int:
    """Bytes of answers Twisted holds for the client in this process (not in the kernel)."""
    t: Any = protocol.transport
    return len(t.dataBuffer) - t.offset + t._tempDataLen


@pytest_twisted.inlineCallbacks
def test_a_client_that_never_reads_cannot_grow_the_server() -> Generator[Any, Any, None]:
    stack = build_stack(FakeStore(lambda: succeed(None)), reactor)
    built: list[FrontProtocol] = []
    build = stack.front.buildProtocol

    def keep(addr: Any) -> FrontProtocol:
        protocol = build(addr)
        built.append(protocol)
        return protocol

    stack.front.buildProtocol = keep  # type: ignore[method-assign]
    port = reactor.listenTCP(0, stack.front, interface="127.0.0.1")
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    try:
        client.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            client.connect(("127.0.0.1", port.getHost().port))
        while not built or built[0].transport is None:
            yield deferLater(reactor, 0.01, lambda: None)
        server = built[0]
        sndbuf = server.transport.socket.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)  # type: ignore[union-attr]
        assert sndbuf <= 2 * SEND_BUFFER  # kernel memory per connection is bounded too
        chunk = b"".join(get_request(announce_path(HASH, 1024 + i)) for i in range(200))
        sent, stalled, peak_writes, peak_buffer = 0, 0, 0, 0
        while sent < BUDGET and stalled < 100:
            try:
                sent += client.send(chunk[sent % len(chunk) :])  # requests stay whole
                stalled = 0
            except OSError as e:
                assert e.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
                stalled += 1
            yield deferLater(reactor, 0.002, lambda: None)
            peak_writes = max(peak_writes, pending_writes(server))
            peak_buffer = max(peak_buffer, len(server._buf))
        assert stalled >= 100, f"the server read all {sent} bytes of requests"
        assert sent < BUDGET // 2
        # one answer may go past the 64 KiB mark before the transport pauses the front
        assert peak_writes <= WRITE_BUFFER + 4096, peak_writes
        assert peak_buffer <= 2 * WRITE_BUFFER, peak_buffer  # at most about one read
        assert server.transport.producerPaused  # type: ignore[union-attr]
        answered = stack.stats.requests[("http", "announce", "ok")]
        assert answered * 200 < sent  # most requests were never read

        # the client reads again: the server goes on where it stopped
        for _ in range(2000):
            with contextlib.suppress(BlockingIOError):
                assert client.recv(1 << 16)
            if stack.stats.requests[("http", "announce", "ok")] > answered + 200:
                break
            yield deferLater(reactor, 0.002, lambda: None)
        assert stack.stats.requests[("http", "announce", "ok")] > answered + 200
    finally:
        client.close()
        yield port.stopListening()
        for p in built:
            if p.transport is not None:
                p.transport.abortConnection()  # type: ignore[attr-defined]
        yield deferLater(reactor, 0.05, lambda: None)
