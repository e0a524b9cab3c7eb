"""Bodies over the limit are refused while they stream in, over real HTTP on loopback, on each
backend: the 413 comes before the client has sent the body (Content-Length), or as soon as the
chunks pass the limit (chunked)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator

import pytest
import pytest_twisted
from registry_kit import Server, make_store
from twisted.internet import threads

from weightless.web.bodylimit import JSON_LIMIT, TORRENT_LIMIT


@pytest_twisted.async_yield_fixture
async def server(store_url: str) -> AsyncIterator[Server]:
    store = make_store(store_url)
    await store.open()
    server = await Server.start(store)
    yield server
    await server.stop()
    await store.close()


def _exchange(port: int, head: bytes, chunks: list[bytes], pause: float = 0.0) -> bytes:
    """Send ``head`` then each chunk (``pause`` s before the last), read until the server
    closes. Runs in a thread: the server lives in the reactor."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        for i, chunk in enumerate(chunks):
            if pause and i == len(chunks) - 1:
                time.sleep(pause)
            s.sendall(chunk)
        received = b""
        while True:
            data = s.recv(65536)
            if not data:
                return received
            received += data


def _status_and_json(reply: bytes) -> tuple[bytes, dict[str, str]]:
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower()
    return head.split(b"\r\n")[0], json.loads(body)


@pytest.mark.parametrize(
    ("path", "length"),
    [(b"/api/registry", JSON_LIMIT + 1), (b"/api/registry/torrent", TORRENT_LIMIT + 1)],
)
@pytest_twisted.ensureDeferred
async def test_content_length_over_the_limit_is_refused_before_the_body(
    server: Server, path: bytes, length: int
) -> None:
    assert server.port is not None
    head = (
        b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (path, length)
    )
    # no body is ever sent: the answer cannot have waited for it
    reply = await threads.deferToThread(_exchange, server.port.getHost().port, head, [])
    status, body = _status_and_json(reply)
    assert status == b"HTTP/1.1 413 Payload Too Large"
    assert "too large" in body["error"]
    assert b"100 Continue" not in reply


@pytest_twisted.ensureDeferred
async def test_chunked_body_is_refused_once_it_passes_the_limit(server: Server) -> None:
    assert server.port is not None
    head = (
        b"POST /api/registry HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    block = b"x" * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(block), block)] * (JSON_LIMIT // len(block))
    chunks.append(b"1\r\nx\r\n")  # one byte past the limit; the final 0-chunk never comes
    port = server.port.getHost().port
    reply = await threads.deferToThread(_exchange, port, head, chunks, 0.2)
    status, body = _status_and_json(reply)
    assert status == b"HTTP/1.1 413 Payload Too Large" and "too large" in body["error"]


@pytest_twisted.ensureDeferred
async def test_bodies_within_the_limits_pass(server: Server) -> None:
    # a torrent upload may be larger than a JSON body: it gets to the parser (a 400 here)
    r = await server.upload(b"d" + b"x" * (2 * JSON_LIMIT))
    assert r.status == 400
    r = await server.request(
        "POST",
        "/api/registry",
        b"[" + b" " * (JSON_LIMIT - 2) + b"]",
        {"Content-Type": "application/json"},
    )
    assert r.status == 400 and "object" in r.json()["error"]
