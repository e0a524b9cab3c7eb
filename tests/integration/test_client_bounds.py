"""What a hostile registry or tracker can make the client read: answers bounded in size (JSON
16 MiB, a .torrent the registry's 16 MiB upload limit) and in time (one deadline for the whole
exchange, not per read), and no key sent to another origin through a redirect. Real sockets,
a server written in the test; and the ``weightless`` command itself against it."""

from __future__ import annotations

import gzip
import socket
import subprocess
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.client_kit import WEIGHTLESS
from integration.hostile_http import HostileServer
from weightless.client.errors import ClientError
from weightless.client.http import MAX_JSON, Bounded
from weightless.client.registry import MAX_TORRENT, Registry
from weightless.client.trackers import Tracker

pytestmark = pytest.mark.integration

GiB = 1 << 30
DEADLINE = 2.0  # the deadline these tests give the client, in seconds
SLACK = 3.0  # what a busy machine may add to it
CHUNK = b"x" * 65536


@pytest.fixture
def servers() -> Iterator[list[HostileServer]]:
    made: list[HostileServer] = []
    yield made
    for server in made:
        server.close()


def serve(servers: list[HostileServer], behaviour: object) -> HostileServer:
    server = HostileServer(behaviour)  # type: ignore[arg-type]
    servers.append(server)
    return server


def gigabyte(headers: bytes) -> object:
    """A behaviour: the head, then 1 GiB of body (or until the client goes)."""

    def behave(conn: socket.socket, head: bytes) -> None:
        server = behave.server  # type: ignore[attr-defined]
        if not server.send(conn, b"HTTP/1.1 200 OK\r\n" + headers + b"\r\n"):
            return
        chunk = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if b"chunked" in headers else CHUNK
        for _ in range(GiB // len(CHUNK)):
            if not server.send(conn, chunk):
                return

    return behave


def bind(server: HostileServer) -> HostileServer:
    server.behaviour.server = server  # type: ignore[attr-defined]
    return server


def timed_failure(call: object) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(ClientError) as e:
        call()  # type: ignore[operator]
    message = str(e.value)
    assert message and "\n" not in message
    return message, time.monotonic() - started


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Type: application/json\r\nConnection: close\r\n",  # no Content-Length
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",  # chunked
        b"Content-Type: application/json\r\nContent-Length: 1073741824\r\n",  # honest, huge
        b"Content-Type: application/json\r\nContent-Length: 99999999999999999999\r\n",
    ],
)
def test_a_gigabyte_answer_is_cut_off_at_the_limit(
    servers: list[HostileServer], headers: bytes
) -> None:
    server = bind(serve(servers, gigabyte(headers)))
    client = Bounded("the hostile server", deadline=60)
    message, _ = timed_failure(lambda: client.request("GET", server.url + "/api/registry"))
    assert "the most read is 16.0 MiB" in message
    assert server.seen.sent < 4 * MAX_JSON  # the client stopped reading; socket buffers aside


def test_a_gzip_bomb_is_bounded_after_decoding(servers: list[HostileServer]) -> None:
    bomb = gzip.compress(b"0" * (200 << 20))  # 200 MiB of zeros in about 200 KiB

    def behave(conn: socket.socket, head: bytes) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
            + bomb
        )

    server = serve(servers, behave)
    message, _ = timed_failure(
        lambda: Bounded("the hostile server").request("GET", server.url + "/")
    )
    assert "too long" in message


def _deflate(data: bytes) -> bytes:
    return zlib.compress(data, 9)


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        (b"gzip", gzip.compress(b"0" * (200 << 20))),
        (b"x-gzip", gzip.compress(b"0" * (200 << 20))),
        (b"deflate", _deflate(b"0" * (200 << 20))),
        (b"gzip, gzip", gzip.compress(gzip.compress(b"0" * (200 << 20)))),  # 200 MiB in 1 KiB
        (b"deflate, gzip", gzip.compress(_deflate(b"0" * (200 << 20)))),
    ],
    ids=["gzip", "x-gzip", "deflate", "gzip twice", "deflate then gzip"],
)
def test_a_compressed_answer_never_holds_much_more_than_the_limit_in_memory(
    servers: list[HostileServer], coding: bytes, body: bytes
) -> None:
    def behave(conn: socket.socket, head: bytes) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n"
            % (coding, len(body))
            + body
        )

    server = serve(servers, behave)
    client = Bounded("the hostile server")
    tracemalloc.start()
    try:
        with pytest.raises(ClientError) as e:
            client.request("GET", server.url + "/", limit=1 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "too long" in str(e.value)
    assert peak < 8 << 20  # 1 MiB allowed: never a whole chunk's decompression at once


@pytest.mark.parametrize("coding", [b"br", b"zstd", b"compress", b"gzip, br"])
def test_a_content_coding_the_client_cannot_bound_is_one_line(
    servers: list[HostileServer], coding: bytes
) -> None:
    def behave(conn: socket.socket, head: bytes) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: 2\r\n\r\n[]" % coding
        )

    server = serve(servers, behave)
    with pytest.raises(ClientError) as e:
        Bounded("the hostile server").request("GET", server.url + "/")
    unread = coding.decode().split(", ")[-1]
    assert str(e.value) == (
        f"the hostile server sent an answer in the content coding {unread!r}, "
        "which the client does not read"
    )


def test_a_torrent_may_be_as_large_as_the_registry_takes_and_no_larger(
    servers: list[HostileServer],
) -> None:
    size = [MAX_TORRENT]

    def behave(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size[0])
        conn.sendall(b"d" * size[0])

    server = serve(servers, behave)
    registry = Registry(Tracker(server.url))
    assert len(registry.torrent("ab" * 32) or b"") == MAX_TORRENT
    size[0] = MAX_TORRENT + 1
    message, _ = timed_failure(lambda: registry.torrent("ab" * 32))
    assert f"an answer of {MAX_TORRENT + 1} bytes" in message


def trickle(head_first: bool) -> object:
    """A byte every 0.2 s, forever: the body (after a whole head) or the head itself."""

    def behave(conn: socket.socket, head: bytes) -> None:
        server = behave.server  # type: ignore[attr-defined]
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
        if head_first and not server.send(conn, answer):
            return
        drip = iter(b"[" * 1000 if head_first else answer + b"[" * 1000)
        for byte in drip:
            if not server.send(conn, bytes([byte])):
                return
            time.sleep(0.2)

    return behave


@pytest.mark.parametrize("head_first", [True, False], ids=["trickled body", "trickled head"])
def test_a_trickle_is_cut_off_at_the_deadline_of_the_whole_request(
    servers: list[HostileServer], head_first: bool
) -> None:
    server = bind(serve(servers, trickle(head_first)))
    client = Bounded("the hostile server", deadline=DEADLINE)
    message, took = timed_failure(lambda: client.request("GET", server.url + "/"))
    assert message == f"the hostile server did not answer within {DEADLINE:g} s"
    assert DEADLINE - 0.1 <= took < DEADLINE + SLACK


def test_a_server_that_accepts_and_says_nothing(servers: list[HostileServer]) -> None:
    server = serve(servers, lambda conn, head: time.sleep(30))
    client = Bounded("the hostile server", deadline=DEADLINE)
    message, took = timed_failure(lambda: client.request("GET", server.url + "/"))
    assert "did not answer within" in message and took < DEADLINE + SLACK


def test_the_deadline_covers_redirects_too(servers: list[HostileServer]) -> None:
    """Each hop answers in 0.6 s, under any per-read timeout; the chain ends at the deadline."""

    def behave(conn: socket.socket, head: bytes) -> None:
        time.sleep(0.6)
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n")

    server = serve(servers, behave)
    client = Bounded("the hostile server", deadline=DEADLINE)
    message, took = timed_failure(lambda: client.request("GET", server.url + "/"))
    assert "did not answer within" in message and took < DEADLINE + SLACK


def test_publish_does_not_send_the_key_to_another_origin(
    servers: list[HostileServer], tmp_path: Path
) -> None:
    """``weightless publish --api-key K`` against a registry that answers 307 to another
    origin: one line, a non-zero exit, and the other origin never hears from it."""
    elsewhere = serve(servers, lambda conn, head: conn.sendall(b"HTTP/1.1 201 Created\r\n\r\n{}"))

    def redirect(conn: socket.socket, head: bytes) -> None:
        if head.startswith(b"GET "):  # publish first reads the entry to merge: none yet
            body = b'{"error": "info_hash not found"}'
            conn.sendall(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            return
        conn.sendall(
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: %s/api/registry/torrent\r\n"
            b"Content-Length: 0\r\n\r\n" % elsewhere.url.encode()
        )

    registry = serve(servers, redirect)
    data = tmp_path / "data.bin"
    data.write_bytes(b"weights" * 10000)
    result = subprocess.run(
        [str(WEIGHTLESS), "publish", str(data), "-o", str(tmp_path / "d.torrent")]
        + ["--tracker", registry.url, "--udp-port", "off", "--api-key", "s3cret key"],
        capture_output=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 1
    error = result.stderr.decode().strip()
    assert "\n" not in error and "another origin: refused" in error, error
    posts = [h for h in registry.seen.heads if h.startswith(b"POST ")]
    assert posts and b"X-Weightless-Key: s3cret key" in posts[0]
    assert elsewhere.seen.heads == []
