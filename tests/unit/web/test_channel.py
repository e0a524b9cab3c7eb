"""HTTP/1.1 message syntax on the whole listener (RFC 9112), through the front protocol: the
fast path for announces and scrapes, the StrictChannel (twisted.web) for everything else. A
head either is served the same way by both, or refused with the same status and closed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    Conn,
    FakeStore,
    Stack,
    announce_path,
    bdecode,
    build_stack,
    compact_peers,
    get_request,
    scrape_path,
)
from twisted.internet.defer import succeed
from twisted.internet.testing import MemoryReactorClock

from weightless.web.channel import MAX_HEAD, MAX_REQUEST_LINE, origin_form

HASH = bytes(range(20))
ANNOUNCE = announce_path(HASH, 6881)
SECOND = announce_path(HASH, 6882)


@pytest.fixture
def stack() -> Iterator[Stack]:
    s = build_stack(FakeStore(lambda: succeed(None)), MemoryReactorClock())
    s.front.doStart()
    yield s
    s.front.doStop()


def served_by_front(reply: object) -> bool:
    return b"server" not in reply.headers  # type: ignore[attr-defined]


# -- refused: 400 and the connection closed, on tracker paths and others alike -------------

BAD_HEADS = {
    "space before the colon": b"GET {t} HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n",
    "space before the colon of Host": b"GET {t} HTTP/1.1\r\nHost : x\r\n\r\n",
    "tab before the colon": b"GET {t} HTTP/1.1\r\nHost: x\r\nX-A\t: b\r\n\r\n",
    "obs-fold": b"GET {t} HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n",
    "obs-fold with a tab": b"GET {t} HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\tc\r\n\r\n",
    "bare CR in a value": b"GET {t} HTTP/1.1\r\nHost: x\r\nX-A: b\rc\r\n\r\n",
    "bare CR ending a line": b"GET {t} HTTP/1.1\r\nHost: x\r\r\n\r\n",
    "bare CR in the request line": b"GET {t}\r HTTP/1.1\r\nHost: x\r\n\r\n",
    "bare CR after the version": b"GET {t} HTTP/1.1\r\r\nHost: x\r\n\r\n",
    "conflicting Content-Length": (
        b"GET {t} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy"
    ),
    "repeated Content-Length": (
        b"GET {t} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"
    ),
    "Content-Length list": b"GET {t} HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\nx",
    "signed Content-Length": b"GET {t} HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\nx",
    "Content-Length then Transfer-Encoding": (
        b"GET {t} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked"
        b"\r\n\r\n0\r\n\r\n"
    ),
    "Transfer-Encoding then Content-Length": (
        b"GET {t} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5"
        b"\r\n\r\n0\r\n\r\n"
    ),
    "Transfer-Encoding identity with Content-Length": (
        b"GET {t} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: identity"
        b"\r\n\r\nabc"
    ),
    "Transfer-Encoding gzip": b"GET {t} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    "Transfer-Encoding twice": (
        b"GET {t} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "no Host on HTTP/1.1": b"GET {t} HTTP/1.1\r\nUser-Agent: x\r\n\r\n",
    "no headers at all on HTTP/1.1": b"GET {t} HTTP/1.1\r\n\r\n",
    "two Hosts": b"GET {t} HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    "two Hosts on HTTP/1.0": b"GET {t} HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n",
    "HTTP/1.2": b"GET {t} HTTP/1.2\r\nHost: x\r\n\r\n",
    "HTTP/2.0": b"GET {t} HTTP/2.0\r\nHost: x\r\n\r\n",
    "HTTP/0.9": b"GET {t} HTTP/0.9\r\nHost: x\r\n\r\n",
    "lowercase version": b"GET {t} http/1.1\r\nHost: x\r\n\r\n",
    "HTTP/1.10": b"GET {t} HTTP/1.10\r\nHost: x\r\n\r\n",
    "made-up version": b"GET {t} WTF/1.1\r\nHost: x\r\n\r\n",
    "no version": b"GET {t}\r\nHost: x\r\n\r\n",
    "two spaces": b"GET  {t} HTTP/1.1\r\nHost: x\r\n\r\n",
    # found by the differential test: three parts, the target empty (it crashed the fast path)
    "two spaces and a tab": b"GET  {t}\tHTTP/1.1\r\nHost: x\r\n\r\n",
    "empty target": b"GET  HTTP/1.1\r\nHost: x\r\n\r\n",
    "trailing space": b"GET {t} HTTP/1.1 \r\nHost: x\r\n\r\n",
    "tab separator": b"GET\t{t} HTTP/1.1\r\nHost: x\r\n\r\n",
    "NUL in a value": b"GET {t} HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "record separator in a value": b"GET {t} HTTP/1.1\r\nHost: x\r\nX-A: a\x1eb\r\n\r\n",
    "escape in a value": b"GET {t} HTTP/1.1\r\nHost: x\r\nX-A: a\x1bb\r\n\r\n",
    "DEL in a value": b"GET {t} HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n",
    "vertical tab in a value": b"GET {t} HTTP/1.1\r\nHost: x\r\nX-A: a\x0bb\r\n\r\n",
    "bad name character": b"GET {t} HTTP/1.1\r\nHost: x\r\nX(A): b\r\n\r\n",
    "empty name": b"GET {t} HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n",
    "no colon": b"GET {t} HTTP/1.1\r\nHost: x\r\nX-A b\r\n\r\n",
    "a byte above 0x7f in the target": b"GET {t}\xff HTTP/1.1\r\nHost: x\r\n\r\n",
    "DEL in the target": b"GET {t}\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
    # a Host that is not a host (the fuzzer's first find: a 500 from the Klein router)
    "Host with a space": b"GET {t} HTTP/1.1\r\nHost: a b\r\n\r\n",
    "Host with an empty label": b"GET {t} HTTP/1.1\r\nHost: a..b\r\n\r\n",
    "Host of a dot": b"GET {t} HTTP/1.1\r\nHost: .\r\n\r\n",
    "Host with a 64-character label": b"GET {t} HTTP/1.1\r\nHost: " + b"a" * 64 + b"\r\n\r\n",
    "Host not UTF-8": b"GET {t} HTTP/1.1\r\nHost: \xf7x\r\n\r\n",
    "Host with a bad port": b"GET {t} HTTP/1.1\r\nHost: x:y\r\n\r\n",
    "Host with two ports": b"GET {t} HTTP/1.1\r\nHost: x:1:2\r\n\r\n",
    "Host with an open bracket": b"GET {t} HTTP/1.1\r\nHost: [::1\r\n\r\n",
    "Host with a path": b"GET {t} HTTP/1.1\r\nHost: x/y\r\n\r\n",
    "Host with a userinfo": b"GET {t} HTTP/1.1\r\nHost: u@x\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD_HEADS))
@pytest.mark.parametrize("target", [ANNOUNCE, b"/health", scrape_path(HASH)])
def test_malformed_heads_get_400_and_close(stack: Stack, name: str, target: bytes) -> None:
    conn = Conn(stack)
    conn.send(BAD_HEADS[name].replace(b"{t}", target) + get_request(SECOND))
    [reply] = conn.replies()
    assert reply.status == 400, name
    assert reply.headers[b"connection"] == b"close"
    assert conn.closed
    assert stack.swarms.peer_count == 0  # neither the bad request nor the one after it


def test_a_body_is_never_a_second_request(stack: Stack) -> None:
    """Request smuggling: behind a proxy that honours ``Content-Length : N``, the body
    would be a second request with its own X-Forwarded-For. Here it is a 400 and nothing else."""
    smuggled = get_request(SECOND, b"X-Forwarded-For: 192.0.2.66")
    head = b"GET %s HTTP/1.1\r\nHost: x\r\nContent-Length : %d\r\n\r\n" % (ANNOUNCE, len(smuggled))
    conn = Conn(stack, "10.0.0.1")
    conn.send(head + smuggled)
    assert [r.status for r in conn.replies()] == [400]
    assert stack.swarms.peer_count == 0


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: %d\r\n\r\n%s",
        b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n",
        b"transfer-encoding: Chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n",
    ],
)
def test_a_valid_body_on_an_announce_is_read_as_a_body(stack: Stack, framing: bytes) -> None:
    body = get_request(announce_path(HASH, 7777))  # looks like a request; it is a body
    head = b"GET %s HTTP/1.1\r\nHost: x\r\n" % ANNOUNCE + framing % (len(body), body)
    conn = Conn(stack)
    conn.send(head + get_request(SECOND))
    first, second = conn.replies()
    assert b"peers" in bdecode(first.body) and b"peers" in bdecode(second.body)
    peers = compact_peers(bdecode(second.body)[b"peers"])
    assert [port for _, port in peers] == [6881]  # 7777 never announced
    assert stack.swarms.peer_count == 2


# -- served the same on the fast path and by twisted.web ---------------------------------


@pytest.mark.parametrize(
    "host",
    [b"", b"x", b"tracker.example:8080", b"[::1]:8080", b"[2001:db8::1]", b"a.", b"127.0.0.1:"]
    + [b"a" * 63 + b".example", b"xn--nxasmq6b.example", b"a-b_c~d%41!$&'()*+,;=x"],
)
@pytest.mark.parametrize("target", [ANNOUNCE, b"/health"])
def test_valid_hosts_are_served(stack: Stack, host: bytes, target: bytes) -> None:
    conn = Conn(stack)
    conn.send(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, host))
    [reply] = conn.replies()
    assert reply.status == 200
    assert not conn.closed


def test_a_host_is_checked_on_every_request_of_a_connection(stack: Stack) -> None:
    conn = Conn(stack)
    conn.send(get_request(ANNOUNCE) + get_request(SECOND).replace(b"tracker.example", b"a..b"))
    assert [r.status for r in conn.replies()] == [200, 400]
    assert stack.swarms.peer_count == 1


ENDINGS = [
    b"GET {t} HTTP/1.1\nHost: x\n\n",
    b"GET {t} HTTP/1.1\nHost: x\r\n\r\n",
    b"GET {t} HTTP/1.1\r\nHost: x\n\r\n",
    b"GET {t} HTTP/1.1\r\nHost: x\r\n\n",
    b"GET {t} HTTP/1.1\r\nHost: x\nUser-Agent: y\r\n\r\n",
    b"GET {t} HTTP/1.0\n\n",
]


@pytest.mark.parametrize("head", ENDINGS)
def test_bare_lf_ends_a_line_for_an_announce(stack: Stack, head: bytes) -> None:
    conn = Conn(stack)
    conn.send(head.replace(b"{t}", ANNOUNCE))
    [reply] = conn.replies()
    assert b"peers" in bdecode(reply.body)
    assert stack.swarms.peer_count == 1


@pytest.mark.parametrize("head", ENDINGS)
def test_bare_lf_ends_a_line_for_health(stack: Stack, head: bytes) -> None:
    conn = Conn(stack)
    conn.send(head.replace(b"{t}", b"/health"))
    [reply] = conn.replies()
    assert (reply.status, reply.body) == (200, b"OK")


def test_bare_lf_pipeline_then_more_requests(stack: Stack) -> None:
    conn = Conn(stack)
    conn.send(
        b"GET /health HTTP/1.1\nHost: x\n\n" + get_request(ANNOUNCE) + b"GET %s HTTP/1.1\n"
        b"Host: x\n\n" % SECOND
    )
    replies = conn.replies()
    assert [r.status for r in replies] == [200, 200, 200]
    assert stack.swarms.peer_count == 2


@pytest.mark.parametrize(
    "prefix", [b"http://tracker.example", b"http://tracker.example:8080", b"HTTPS://t.example"]
)
def test_absolute_form_target_is_served(stack: Stack, prefix: bytes) -> None:
    conn = Conn(stack)
    reply = conn.get(prefix + ANNOUNCE)
    assert served_by_front(reply)
    assert b"peers" in bdecode(reply.body)
    scrape = conn.get(prefix + scrape_path(HASH))
    assert bdecode(scrape.body)[b"files"][HASH][b"incomplete"] == 1
    health = conn.get(prefix + b"/health")
    assert (health.status, health.body) == (200, b"OK")
    # and after the hand-over, the channel serves absolute-form too
    assert b"peers" in bdecode(conn.get(prefix + SECOND).body)
    assert stack.swarms.peer_count == 2


@pytest.mark.parametrize(
    ("target", "path"),
    [
        (b"http://h/announce?x=1", b"/announce?x=1"),
        (b"http://h", b"/"),
        (b"http://h?x=1", b"/?x=1"),
        (b"https://user@h:1/a/b", b"/a/b"),
        (b"/announce", b"/announce"),
        (b"ftp://h/x", b"ftp://h/x"),
        (b"*", b"*"),
    ],
)
def test_origin_form(target: bytes, path: bytes) -> None:
    assert origin_form(target) == path


def test_http10_without_host_is_served(stack: Stack) -> None:
    conn = Conn(stack)
    conn.send(b"GET %s HTTP/1.0\r\n\r\n" % ANNOUNCE)
    [reply] = conn.replies()
    assert b"peers" in bdecode(reply.body)


def test_request_line_over_8_kib_is_414(stack: Stack) -> None:
    for target in (ANNOUNCE + b"&pad=", b"/health?pad="):
        conn = Conn(stack)
        line = b"GET " + target
        conn.send(line + b"a" * (MAX_REQUEST_LINE - len(line) - 8) + b" HTTP/1.1\r\n")
        [reply] = conn.replies()
        assert reply.status == 414
        assert conn.closed


def test_request_line_over_8_kib_is_414_before_its_end(stack: Stack) -> None:
    conn = Conn(stack)
    conn.send(b"GET /health?pad=" + b"a" * MAX_REQUEST_LINE)  # no end of line yet
    [reply] = conn.replies()
    assert reply.status == 414
    assert conn.closed


def test_request_line_of_8_kib_is_not_414(stack: Stack) -> None:
    conn = Conn(stack)
    line = b"GET /health?pad="
    pad = b"a" * (MAX_REQUEST_LINE - len(line) - len(b" HTTP/1.1"))
    conn.send(line + pad + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    [reply] = conn.replies()
    assert (reply.status, reply.body) == (200, b"OK")


@pytest.mark.parametrize("target", [ANNOUNCE, b"/health"])
def test_head_over_16_kib_is_431(stack: Stack, target: bytes) -> None:
    conn = Conn(stack)
    fields = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(17))
    conn.send(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    [reply] = conn.replies()
    assert reply.status == 431
    assert conn.closed
    assert stack.swarms.peer_count == 0


def test_head_of_15_kib_is_served(stack: Stack) -> None:
    conn = Conn(stack)
    fields = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(15))
    assert len(fields) < MAX_HEAD - 200
    conn.send(b"GET " + ANNOUNCE + b" HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    [reply] = conn.replies()
    assert b"peers" in bdecode(reply.body)


@pytest.mark.parametrize("target", [ANNOUNCE, b"/announce/somepasskey?x=1", scrape_path(HASH)])
def test_head_on_a_tracker_path_changes_nothing(stack: Stack, target: bytes) -> None:
    conn = Conn(stack)
    conn.send(b"HEAD " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    data = conn.transport.value()
    assert data.startswith(b"HTTP/1.1 200 ")
    assert stack.swarms.peer_count == 0
    assert stack.stats.requests == {} or all(
        kind != "announce" for _, kind, _ in stack.stats.requests
    )


# -- what the fuzzers found (tests/fuzz), kept ------------------------------------------------

FUZZ_FINDS = sorted((Path(__file__).parents[2] / "fuzz" / "corpus" / "front").glob("regression-*"))


@pytest.mark.parametrize("path", FUZZ_FINDS, ids=lambda p: p.name)
def test_fuzzer_finds_get_no_500(stack: Stack, path: Path) -> None:
    data = path.read_bytes()
    conn = Conn(stack)
    conn.send(data)
    out = conn.transport.value()
    assert b" 500 " not in out
    assert not out or out.startswith((b"HTTP/1.1 ", b"HTTP/1.0 "))


def test_the_first_fuzzer_find_is_a_400(stack: Stack) -> None:
    """A Host the Klein router could not encode (a 500 before)."""
    data = (
        Path(__file__).parents[2] / "fuzz" / "corpus" / "front" / "regression-host-500"
    ).read_bytes()
    conn = Conn(stack)
    conn.send(data)
    assert conn.replies()[0].status == 400
