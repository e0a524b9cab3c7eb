"""The front protocol in memory: the real tracker objects behind a StringTransport, on a fake
clock, talking raw HTTP as a BitTorrent client (or a browser) would."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import ip_address
from typing import Any

import pytest
from helpers import (
    RATE_LIMITED,
    Conn,
    FakeStore,
    Reply,
    Stack,
    announce_path,
    bdecode,
    build_stack,
    compact_peers,
    get_request,
    parse_replies,
    scrape_path,
)
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock, StringTransport

from weightless.tracker.catalog import CatalogEntry
from weightless.web.channel import DEFAULT_HEADER_TIMEOUT, MAX_HEAD
from weightless.web.front import IDLE_TIMEOUT
from weightless.web.tracker_http import TrackerHTTP

HASH = bytes(range(20))
BINARY_HASH = b"\xff\x00 %&=+?\r\n\xfe" + b"\xff" * 9


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


def ok_store() -> FakeStore:
    return FakeStore(lambda: succeed(None))


@pytest.fixture
def stack(clock: MemoryReactorClock) -> Iterator[Stack]:
    s = build_stack(ok_store(), clock)
    s.front.doStart()
    yield s
    s.front.doStop()


def announce_reply(reply: Reply) -> dict[bytes, object]:
    assert reply.status == 200
    assert reply.headers[b"content-length"] == str(len(reply.body)).encode()
    decoded: dict[bytes, object] = bdecode(reply.body)
    return decoded


def failure_reason(reply: Reply) -> bytes:
    body = announce_reply(reply)
    assert b"failure reason" in body, body
    reason = body[b"failure reason"]
    assert isinstance(reason, bytes)
    return reason


def test_announce_gets_a_bencoded_reply(stack: Stack) -> None:
    conn = Conn(stack)
    reply = conn.get(announce_path(HASH, 6881))
    assert reply.version == b"HTTP/1.1"
    body = announce_reply(reply)
    assert body[b"interval"] == 1800
    assert body[b"min interval"] == 900
    assert body[b"complete"] == 0
    assert body[b"incomplete"] == 1  # the announcer itself
    assert body[b"peers"] == b""
    assert not conn.closed


@pytest.mark.parametrize("path", [b"/announce", b"/announce/", b"/announce/anything"])
def test_every_announce_url_is_answered_without_secret(stack: Stack, path: bytes) -> None:
    target = announce_path(HASH, 7000).replace(b"/announce", path, 1)
    assert b"peers" in announce_reply(Conn(stack).get(target))


def test_second_peer_gets_the_first_back(stack: Stack) -> None:
    Conn(stack, "198.51.100.1").get(announce_path(HASH, 6881))
    body = announce_reply(Conn(stack, "198.51.100.2").get(announce_path(HASH, 6882)))
    assert compact_peers(body[b"peers"]) == [("198.51.100.1", 6881)]  # type: ignore[arg-type]
    assert body[b"incomplete"] == 2


def test_pipelined_requests_get_two_replies_in_order(stack: Stack) -> None:
    conn = Conn(stack)
    conn.send(get_request(announce_path(HASH, 6881)) + get_request(announce_path(HASH, 6882)))
    first, second = conn.replies()
    assert compact_peers(announce_reply(first)[b"peers"]) == []  # type: ignore[arg-type]
    assert compact_peers(announce_reply(second)[b"peers"]) == [  # type: ignore[arg-type]
        ("203.0.113.7", 6881)
    ]
    assert not conn.closed


def test_request_split_across_reads(stack: Stack) -> None:
    conn = Conn(stack)
    request = get_request(announce_path(HASH, 6881))
    for i in range(len(request) - 1):
        conn.send(request[i : i + 1])
    assert conn.transport.value() == b""
    conn.send(request[-1:])
    [reply] = conn.replies()
    assert b"peers" in announce_reply(reply)
    # and the connection still takes the next request
    assert b"peers" in announce_reply(conn.get(announce_path(HASH, 6882)))


def test_connection_close_closes_after_the_reply(stack: Stack) -> None:
    conn = Conn(stack)
    reply = conn.get(announce_path(HASH), b"Connection: close")
    assert b"peers" in announce_reply(reply)
    assert reply.headers[b"connection"].lower() == b"close"
    assert conn.closed


def test_http10_closes_after_the_reply(stack: Stack) -> None:
    conn = Conn(stack)
    conn.send(get_request(announce_path(HASH), version=b"HTTP/1.0"))
    [reply] = conn.replies()
    assert b"peers" in announce_reply(reply)
    assert conn.closed


def test_http10_keep_alive_stays_open(stack: Stack) -> None:
    conn = Conn(stack)
    conn.send(get_request(announce_path(HASH), b"Connection: keep-alive", version=b"HTTP/1.0"))
    [reply] = conn.replies()
    assert b"peers" in announce_reply(reply)
    assert reply.headers[b"connection"].lower() == b"keep-alive"  # so the client reuses it
    assert not conn.closed


def test_connection_header_without_a_space(stack: Stack) -> None:
    conn = Conn(stack)
    conn.get(announce_path(HASH), b"Connection:Close")
    assert conn.closed


def test_binary_info_hash(stack: Stack) -> None:
    target = announce_path(BINARY_HASH, 6881)
    assert b"%FF" in target.upper() and b"%0D%0A" in target.upper()
    first = announce_reply(Conn(stack, "198.51.100.1").get(target))
    assert b"failure reason" not in first
    second = announce_reply(Conn(stack, "198.51.100.2").get(announce_path(BINARY_HASH, 6882)))
    assert compact_peers(second[b"peers"]) == [("198.51.100.1", 6881)]  # type: ignore[arg-type]
    assert BINARY_HASH in stack.swarms.swarms
    scrape = Conn(stack).get(scrape_path(BINARY_HASH))
    assert scrape.status == 200
    assert bdecode(scrape.body)[b"files"][BINARY_HASH][b"incomplete"] == 2


def test_full_v2_hash_joins_the_truncated_swarm(stack: Stack) -> None:
    v2 = bytes(range(100, 132))
    Conn(stack, "198.51.100.1").get(announce_path(v2, 6881))
    body = announce_reply(Conn(stack, "198.51.100.2").get(announce_path(v2[:20], 6882)))
    assert compact_peers(body[b"peers"]) == [("198.51.100.1", 6881)]  # type: ignore[arg-type]


def test_scrape_counts(stack: Stack) -> None:
    conn = Conn(stack)
    conn.get(announce_path(HASH, 6881, left=0))
    conn.get(announce_path(HASH, 6882))
    other = b"\x01" * 20
    reply = conn.get(scrape_path(HASH, other))
    assert reply.status == 200
    assert reply.headers[b"content-length"] == str(len(reply.body)).encode()
    files = bdecode(reply.body)[b"files"]
    assert files[HASH] == {b"complete": 1, b"downloaded": 0, b"incomplete": 1}
    assert files[other] == {b"complete": 0, b"downloaded": 0, b"incomplete": 0}


def test_listed_mode_refuses_unregistered_and_serves_registered(clock: MemoryReactorClock) -> None:
    stack = build_stack(ok_store(), clock, open_tracker=False)
    registered = bytes.fromhex("ab" * 32)
    stack.catalog.load([CatalogEntry("ab" * 32, None, 3)], ["cd" * 20])
    conn = Conn(stack)
    assert b"unregistered" in failure_reason(conn.get(announce_path(HASH)))
    body = announce_reply(conn.get(announce_path(registered[:20])))
    assert body[b"downloaded"] == 3
    assert b"blocked" in failure_reason(conn.get(announce_path(bytes.fromhex("cd" * 20))))


@pytest.mark.parametrize(
    "target",
    [
        b"/health",
        b"/metrics",
        b"/api/registry/search?limit=0",
        b"/announcements",
    ],
)
def test_other_paths_are_handed_to_the_site(stack: Stack, target: bytes) -> None:
    conn = Conn(stack)
    conn.send(get_request(target))
    [reply] = conn.replies()
    assert reply.headers.get(b"server", b"").startswith(b"TwistedWeb")
    if target == b"/health":
        assert (reply.status, reply.body) == (200, b"OK")
    elif target == b"/metrics":
        assert reply.status == 200
        assert b"# HELP tracker_announces_total" in reply.body
    elif target.startswith(b"/api/"):  # the registry API, as tap wires it
        assert reply.status == 400 and b"limit" in reply.body
    else:
        assert reply.status == 404
    assert not conn.closed
    # the rest of the connection belongs to twisted.web; announces still work there
    reply = conn.get(announce_path(HASH, 6881))
    assert reply.headers.get(b"server", b"").startswith(b"TwistedWeb")
    assert b"peers" in bdecode(reply.body)


def test_handed_over_after_answered_announces_on_the_same_connection(stack: Stack) -> None:
    conn = Conn(stack)
    conn.send(get_request(announce_path(HASH, 6881)) + get_request(b"/metrics"))
    first, second = conn.replies()
    assert b"server" not in first.headers  # answered by the front itself
    assert b"peers" in announce_reply(first)
    assert second.status == 200
    assert b"tracker_announces_total 1.0" in second.body


def test_post_announce_is_handed_over(stack: Stack) -> None:
    conn = Conn(stack)
    conn.send(
        b"POST " + announce_path(HASH) + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    )
    [reply] = conn.replies()
    assert reply.status == 405
    assert reply.headers.get(b"server", b"").startswith(b"TwistedWeb")
    assert stack.swarms.peer_count == 0
    assert not conn.closed


def test_get_with_a_body_is_handed_over(stack: Stack) -> None:
    conn = Conn(stack)
    conn.send(get_request(announce_path(HASH), b"Content-Length: 2") + b"xy")
    [reply] = conn.replies()
    assert reply.headers.get(b"server", b"").startswith(b"TwistedWeb")
    assert b"peers" in bdecode(reply.body)


def test_oversized_head_gets_431_and_is_closed(stack: Stack) -> None:
    conn = Conn(stack)
    conn.send(b"GET " + announce_path(HASH) + b" HTTP/1.1\r\nX-Padding: ")
    conn.send(b"a" * (MAX_HEAD + 1))
    [reply] = conn.replies()
    assert reply.status == 431
    assert conn.closed
    assert stack.swarms.peer_count == 0


def test_a_long_head_for_another_path_is_twisted_webs_whatever_the_reads(stack: Stack) -> None:
    conn = Conn(stack)
    conn.send(b"GET /health HTTP/1.1\r\nHost: x\r\nCookie: ")
    conn.send(b"a" * 12000)  # longer than a request line, shorter than a head
    conn.send(b"\r\n\r\n")
    [reply] = conn.replies()
    assert reply.status == 200 and reply.body == b"OK"


def test_forwarded_for_is_honoured_from_a_trusted_proxy(clock: MemoryReactorClock) -> None:
    stack = build_stack(ok_store(), clock, trusted_proxies=("10.0.0.0/8",))
    proxy = Conn(stack, "10.0.0.1")
    proxy.get(announce_path(HASH, 6881), b"X-Forwarded-For: 192.0.2.99")
    body = announce_reply(Conn(stack, "198.51.100.2").get(announce_path(HASH, 6882)))
    assert ("192.0.2.99", 6881) in compact_peers(body[b"peers"])  # type: ignore[arg-type]
    assert ("10.0.0.1", 6881) not in compact_peers(body[b"peers"])  # type: ignore[arg-type]


def test_forwarded_for_rightmost_untrusted_hop(clock: MemoryReactorClock) -> None:
    stack = build_stack(ok_store(), clock, trusted_proxies=("10.0.0.0/8",))
    Conn(stack, "10.0.0.1").get(
        announce_path(HASH, 6881), b"X-Forwarded-For: 6.6.6.6, 192.0.2.99, 10.9.9.9"
    )
    body = announce_reply(Conn(stack, "198.51.100.2").get(announce_path(HASH, 6882)))
    assert compact_peers(body[b"peers"]) == [("192.0.2.99", 6881)]  # type: ignore[arg-type]


def test_forwarded_for_lines_added_by_the_proxy_win(clock: MemoryReactorClock) -> None:
    # A proxy that appends its own X-Forwarded-For line (HAProxy's "option forwardfor") leaves
    # the client's forged line first: the client must not choose its address with it.
    stack = build_stack(ok_store(), clock, trusted_proxies=("10.0.0.0/8",))
    Conn(stack, "10.0.0.1").get(
        announce_path(HASH, 6881),
        b"X-Forwarded-For: 6.6.6.6",
        b"X-Forwarded-For: 192.0.2.99",
    )
    body = announce_reply(Conn(stack, "198.51.100.2").get(announce_path(HASH, 6882)))
    assert compact_peers(body[b"peers"]) == [("192.0.2.99", 6881)]  # type: ignore[arg-type]


def test_forwarded_for_is_ignored_from_anyone_else(clock: MemoryReactorClock) -> None:
    stack = build_stack(ok_store(), clock, trusted_proxies=("10.0.0.0/8",))
    Conn(stack, "198.51.100.1").get(announce_path(HASH, 6881), b"X-Forwarded-For: 192.0.2.99")
    body = announce_reply(Conn(stack, "198.51.100.2").get(announce_path(HASH, 6882)))
    assert compact_peers(body[b"peers"]) == [("198.51.100.1", 6881)]  # type: ignore[arg-type]


def test_forwarded_for_is_ignored_without_trusted_proxies(stack: Stack) -> None:
    Conn(stack, "10.0.0.1").get(announce_path(HASH, 6881), b"X-Forwarded-For: 192.0.2.99")
    body = announce_reply(Conn(stack, "198.51.100.2").get(announce_path(HASH, 6882)))
    assert compact_peers(body[b"peers"]) == [("10.0.0.1", 6881)]  # type: ignore[arg-type]


def test_ipv4_mapped_peer_is_stored_as_ipv4(stack: Stack) -> None:
    Conn(stack, "::ffff:198.51.100.1").get(announce_path(HASH, 6881))
    body = announce_reply(Conn(stack, "198.51.100.2").get(announce_path(HASH, 6882)))
    assert compact_peers(body[b"peers"]) == [("198.51.100.1", 6881)]  # type: ignore[arg-type]


def test_rate_limit(clock: MemoryReactorClock) -> None:
    stack = build_stack(ok_store(), clock, rate_limit=5, rate_burst=10)
    conn = Conn(stack)
    for port in range(6881, 6891):
        assert b"peers" in announce_reply(conn.get(announce_path(HASH, port)))
    reply = conn.get(announce_path(HASH, 6999))
    assert failure_reason(reply) == RATE_LIMITED
    assert stack.swarms.peer_count == 10

    scrape = conn.get(scrape_path(HASH))
    assert scrape.status == 429
    assert int(scrape.headers[b"retry-after"]) >= 1
    assert scrape.headers[b"content-length"] == str(len(scrape.body)).encode()
    assert not conn.closed

    # another address has its own bucket
    assert b"peers" in announce_reply(Conn(stack, "198.51.100.9").get(announce_path(HASH, 7000)))

    # tokens come back with time
    clock.advance(1)
    assert b"peers" in announce_reply(conn.get(announce_path(HASH, 6999)))
    assert conn.get(scrape_path(HASH)).status == 200


BAD = [
    (dict(info_hash=b"x" * 19), b"info_hash"),
    (dict(info_hash=b"x" * 21), b"info_hash"),
    (dict(info_hash=None), b"info_hash"),
    (dict(port=None), b"port"),
    (dict(port=0), b"port"),
    (dict(port=65536), b"port"),
    (dict(port="http"), b"port"),
    (dict(uploaded="lots"), b"uploaded"),
    (dict(downloaded="-1"), b"downloaded"),
    (dict(left="1e6"), b"left"),
    (dict(numwant="many"), b"numwant"),
    (dict(event="finished"), b"event"),
    (dict(peer_id=b"short"), b"peer_id"),
]


@pytest.mark.parametrize(("params", "mentions"), BAD)
def test_bad_announce_gets_a_failure_and_the_connection_goes_on(
    stack: Stack, params: dict[str, object], mentions: bytes
) -> None:
    fields: dict[str, object] = {"info_hash": HASH, "port": 6881}
    fields.update(params)
    info_hash = fields.pop("info_hash")
    port = fields.pop("port")
    target = announce_path(info_hash, port, **fields)  # type: ignore[arg-type]
    conn = Conn(stack)
    conn.send(get_request(target) + get_request(announce_path(HASH, 6881)))
    bad, good = conn.replies()
    assert mentions in failure_reason(bad).lower()
    assert b"peers" in announce_reply(good)
    assert not conn.closed


@pytest.mark.parametrize(
    "target",
    [
        b"/scrape",
        b"/scrape?info_hash=short",
        b"/scrape?" + b"&".join(b"info_hash=%02d" % i + b"x" * 18 for i in range(65)),
    ],
)
def test_bad_scrape_gets_a_failure(stack: Stack, target: bytes) -> None:
    conn = Conn(stack)
    conn.send(get_request(target) + get_request(scrape_path(HASH)))
    bad, good = conn.replies()
    assert bad.status == 200
    assert b"failure reason" in bdecode(bad.body)
    assert b"files" in bdecode(good.body)


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    stack: Stack, clock: MemoryReactorClock
) -> None:
    conn = Conn(stack)
    clock.advance(DEFAULT_HEADER_TIMEOUT - 0.5)
    assert not conn.closed
    clock.advance(0.5)
    assert conn.closed


def test_idle_keep_alive_connection_is_closed_after_60_s(
    stack: Stack, clock: MemoryReactorClock
) -> None:
    conn = Conn(stack)
    conn.get(announce_path(HASH))
    clock.advance(IDLE_TIMEOUT - 1)
    assert not conn.closed
    clock.advance(1)
    assert conn.closed


def test_activity_keeps_a_connection_open(stack: Stack, clock: MemoryReactorClock) -> None:
    conn = Conn(stack)
    conn.get(announce_path(HASH))
    clock.advance(IDLE_TIMEOUT - 1)
    conn.get(announce_path(HASH))
    clock.advance(IDLE_TIMEOUT - 1)
    assert not conn.closed
    clock.advance(1)
    assert conn.closed


@pytest.mark.parametrize("step", [0.5, 1.0, 3.0, 9.0])
def test_a_trickled_head_is_cut_at_the_header_timeout_however_slow(
    stack: Stack, clock: MemoryReactorClock, step: float
) -> None:
    """One byte every ``step`` seconds: the deadline counts from the head's first byte, not
    from the last byte (which would let one byte every 59 s hold the connection forever)."""
    conn = Conn(stack)
    conn.get(announce_path(HASH))  # after a first request on the connection
    clock.advance(30)
    request = get_request(announce_path(HASH, 6882))
    sent = 0
    while not conn.closed and sent < len(request):
        conn.send(request[sent : sent + 1])
        sent += 1
        clock.advance(step)
    assert conn.closed
    assert sent * step <= DEFAULT_HEADER_TIMEOUT + step
    assert stack.swarms.peer_count == 1  # the trickled announce was never served


def test_a_trickled_head_handed_over_keeps_its_deadline(
    stack: Stack, clock: MemoryReactorClock
) -> None:
    """A head for twisted.web (here /health) is cut at the same deadline after the hand-over,
    though twisted.web's own timer restarts on every byte."""
    conn = Conn(stack)
    conn.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    clock.advance(4)
    conn.send(b"X-Padding: " + b"a" * 9000)  # longer than a request line: handed over
    assert conn.protocol._web is not None
    for _ in range(5):
        clock.advance(1)
        conn.send(b"a")
    assert not conn.closed  # 9 s after the head's first byte
    clock.advance(1)
    assert conn.closed
    assert conn.transport.value() == b""


def test_a_head_may_take_almost_the_whole_timeout(stack: Stack, clock: MemoryReactorClock) -> None:
    conn = Conn(stack)
    request = get_request(announce_path(HASH))
    conn.send(request[:10])
    clock.advance(DEFAULT_HEADER_TIMEOUT - 0.5)
    conn.send(request[10:])
    [reply] = conn.replies()
    assert b"peers" in announce_reply(reply)
    assert not conn.closed


class RemoteWorker:
    """Stands in for the cluster router: every announce and scrape is answered later, by the
    test, as if another worker owned the swarm."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.asked: list[tuple[bytes, Deferred[bytes]]] = []

    def http_announce(self, query: bytes, passkey: bytes | None, ip: str, now: float) -> Any:
        d: Deferred[bytes] = Deferred()
        self.asked.append((b"announce", d))
        return d

    def http_scrape(self, query: bytes, passkey: bytes | None) -> Any:
        d: Deferred[bytes] = Deferred()
        self.asked.append((b"scrape", d))
        return d


@pytest.fixture
def remote(stack: Stack) -> RemoteWorker:
    worker = RemoteWorker(stack)
    stack.front.http = TrackerHTTP(
        stack.tracker,
        stack.limiter,
        stack.stats,
        stack.reactor.seconds,
        router=worker,  # type: ignore[arg-type]
    )
    return worker


def test_answers_from_another_worker_keep_the_pipeline_in_order(
    stack: Stack, remote: RemoteWorker
) -> None:
    conn = Conn(stack)
    conn.send(get_request(announce_path(HASH, 6881)) + get_request(scrape_path(HASH)))
    assert conn.transport.value() == b""
    assert [kind for kind, _ in remote.asked] == [b"announce"]  # the scrape waits its turn
    remote.asked[0][1].callback(b"d8:intervali1800e5:peers0:e")
    [first] = conn.replies()
    assert announce_reply(first) == {b"interval": 1800, b"peers": b""}
    assert [kind for kind, _ in remote.asked] == [b"announce", b"scrape"]
    remote.asked[1][1].callback(b"d5:filesdee")
    [second] = conn.replies()
    assert (second.status, second.body) == (200, b"d5:filesdee")
    assert not conn.closed
    assert stack.stats.requests[("http", "announce", "ok")] == 1


def test_answer_from_another_worker_after_the_client_left(
    stack: Stack, remote: RemoteWorker
) -> None:
    conn = Conn(stack)
    conn.send(get_request(announce_path(HASH, 6881)))
    conn.protocol.connectionLost(None)
    remote.asked[0][1].callback(b"d8:intervali1800e5:peers0:e")
    assert conn.transport.value() == b""


def test_failed_answer_from_another_worker(stack: Stack, remote: RemoteWorker) -> None:
    conn = Conn(stack)
    conn.send(get_request(announce_path(HASH, 6881)))
    remote.asked[0][1].errback(ConnectionError("worker 2 went away"))
    [reply] = conn.replies()
    assert failure_reason(reply) == b"internal error"
    assert conn.closed


# -- backpressure ----------------------------------------------------------------------------


class PausingTransport(StringTransport):
    """A transport whose write buffer is "full" after ``room`` bytes, as a TCP transport's is
    after 64 KiB a client does not read: it pauses its producer, as Twisted's do."""

    def __init__(self, room: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.room = room

    def write(self, data: bytes) -> None:
        super().write(data)
        if len(self.value()) > self.room and self.producer is not None:
            self.producer.pauseProducing()


def test_the_front_is_its_transports_producer(stack: Stack) -> None:
    conn = Conn(stack)
    assert conn.transport.producer is conn.protocol
    assert conn.transport.streaming


def test_while_writes_are_paused_nothing_is_read_or_answered(stack: Stack) -> None:
    conn = Conn(stack)
    conn.protocol.pauseProducing()  # the transport's buffer passed 64 KiB
    assert conn.transport.producerState == "paused"  # the socket is not read
    conn.send(get_request(announce_path(HASH, 6881)) + get_request(announce_path(HASH, 6882)))
    assert conn.transport.value() == b""
    assert stack.swarms.peer_count == 0
    conn.protocol.resumeProducing()  # drained
    assert conn.transport.producerState == "producing"
    assert [b"peers" in announce_reply(r) for r in conn.replies()] == [True, True]


def test_a_pipeline_stops_where_the_buffer_fills(stack: Stack) -> None:
    addr = IPv4Address("TCP", "203.0.113.7", 50000)
    protocol = stack.front.buildProtocol(addr)
    transport = PausingTransport(room=1, peerAddress=addr)
    protocol.makeConnection(transport)
    pipeline = b"".join(get_request(announce_path(HASH, 7000 + i)) for i in range(50))
    protocol.dataReceived(pipeline)
    assert len(parse_replies(transport.value())) == 1  # one answer, then it waits
    assert transport.producerState == "paused"
    assert stack.swarms.peer_count == 1
    transport.room = 1 << 30
    transport.clear()
    protocol.resumeProducing()
    assert len(parse_replies(transport.value())) == 49
    assert stack.swarms.peer_count == 50


def test_a_client_that_never_reads_is_dropped_after_the_idle_timeout(
    stack: Stack, clock: MemoryReactorClock
) -> None:
    conn = Conn(stack)
    conn.get(announce_path(HASH))
    conn.protocol.pauseProducing()
    clock.advance(IDLE_TIMEOUT - 1)
    assert not conn.closed
    clock.advance(1)
    assert conn.closed


# -- proxies: the forms in which they pass the client address -------------------------------


def peers6(data: bytes) -> list[tuple[str, int]]:
    return [
        (str(ip_address(data[i : i + 16])), int.from_bytes(data[i + 16 : i + 18], "big"))
        for i in range(0, len(data), 18)
    ]


@pytest.mark.parametrize(
    ("headers", "client"),
    [
        ([b"X-Forwarded-For: 203.0.113.10:51008"], "203.0.113.10"),
        ([b"X-Forwarded-For: 6.6.6.6, 203.0.113.10:51008"], "203.0.113.10"),
        ([b"X-Forwarded-For: 203.0.113.10:51008, 10.2.3.4:443"], "203.0.113.10"),
        ([b"X-Forwarded-For: [2001:db8::10]:51009"], "2001:db8::10"),
        ([b"X-Forwarded-For: 2001:db8::10"], "2001:db8::10"),
        ([b"Forwarded: for=203.0.113.10"], "203.0.113.10"),
        ([b'Forwarded: for="203.0.113.10:51008";proto=http'], "203.0.113.10"),
        ([b'Forwarded: for="[2001:db8::10]:51009"'], "2001:db8::10"),
        ([b"Forwarded: for=6.6.6.6", b"Forwarded: for=203.0.113.10;by=10.0.0.1"], "203.0.113.10"),
        ([b"Forwarded: for=_hidden"], "10.0.0.1"),
        ([b"X-Forwarded-For: 203.0.113.10", b'Forwarded: for="203.0.113.10:1"'], "203.0.113.10"),
        ([b"X-Forwarded-For: 192.0.2.66", b"Forwarded: for=203.0.113.10"], "10.0.0.1"),
    ],
)
@pytest.mark.parametrize("handed_over", [False, True])
def test_client_address_from_a_trusted_proxy(
    clock: MemoryReactorClock, headers: list[bytes], client: str, handed_over: bool
) -> None:
    stack = build_stack(ok_store(), clock, trusted_proxies=("10.0.0.0/8",))
    proxy = Conn(stack, "10.0.0.1")
    if handed_over:  # the same headers read by twisted.web (the Klein announce route)
        proxy.get(b"/health")
    proxy.get(announce_path(HASH, 6881), *headers)
    v4 = announce_reply(Conn(stack, "198.51.100.2").get(announce_path(HASH, 6882)))
    v6 = announce_reply(Conn(stack, "2001:db8::99").get(announce_path(HASH, 6883)))
    found = compact_peers(v4[b"peers"]) + peers6(v6.get(b"peers6", b""))  # type: ignore[arg-type]
    assert (client, 6881) in found, found


def test_clients_behind_one_proxy_have_their_own_rate_limit(clock: MemoryReactorClock) -> None:
    stack = build_stack(
        ok_store(), clock, trusted_proxies=("10.0.0.0/8",), rate_limit=1, rate_burst=2
    )
    proxy = Conn(stack, "10.0.0.1")
    for port in (6881, 6882):
        proxy.get(announce_path(HASH, port), b"X-Forwarded-For: 203.0.113.10:51008")
    limited = proxy.get(announce_path(HASH, 6883), b"X-Forwarded-For: 203.0.113.10:51009")
    assert failure_reason(limited) == RATE_LIMITED
    other = proxy.get(announce_path(HASH, 6884), b"X-Forwarded-For: [2001:db8::10]:51009")
    assert b"peers" in announce_reply(other)


def test_an_ipv6_64_shares_one_rate_limit_bucket(clock: MemoryReactorClock) -> None:
    stack = build_stack(ok_store(), clock, rate_limit=1, rate_burst=3)
    replies = [
        Conn(stack, f"2001:db8:7:8::{i:x}").get(announce_path(HASH, 7000 + i)) for i in range(1, 6)
    ]
    assert [b"failure reason" in bdecode(r.body) for r in replies] == [False] * 3 + [True] * 2
    assert b"peers" in announce_reply(Conn(stack, "2001:db8:7:9::1").get(announce_path(HASH)))


def test_ipv4_mapped_and_plain_ipv4_share_a_bucket(clock: MemoryReactorClock) -> None:
    stack = build_stack(ok_store(), clock, rate_limit=1, rate_burst=2)
    Conn(stack, "::ffff:198.51.100.1").get(announce_path(HASH, 7001))
    Conn(stack, "198.51.100.1").get(announce_path(HASH, 7002))
    reply = Conn(stack, "::ffff:198.51.100.1").get(announce_path(HASH, 7003))
    assert failure_reason(reply) == RATE_LIMITED


@pytest.mark.parametrize(("count", "size"), [(58, 20), (64, 20), (64, 32)])
def test_a_scrape_of_64_hashes_written_fully_as_escapes_is_answered(
    stack: Stack, count: int, size: int
) -> None:
    hashes = [bytes([i + 1]) * size for i in range(count)]
    target = b"/scrape?" + b"&".join(
        b"info_hash=" + "".join(f"%{b:02X}" for b in h).encode() for h in hashes
    )
    assert len(target) > 4096
    reply = Conn(stack).get(target)
    assert reply.status == 200
    files = bdecode(reply.body)[b"files"]
    assert len(files) == count


def test_a_stray_percent_after_a_hash_is_refused(stack: Stack) -> None:
    target = announce_path(HASH, 6881).replace(b"&peer_id", b"%&peer_id", 1)
    assert b"percent-encoding" in failure_reason(Conn(stack).get(target))
    assert stack.swarms.peer_count == 0
