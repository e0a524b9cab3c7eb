"""The UDP socket loop (weightless.udp.port) over real loopback sockets: the recvmmsg/sendmmsg
extension and the pure-Python loop give the same answers; a flood of datagrams leaves the
reactor to HTTP."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_twisted
import treq
import udp_client
from twisted.internet import reactor as _reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import deferLater
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data
from udp_harness import Harness

from weightless.udp import port as udpport
from weightless.wire import udp

pytestmark = pytest.mark.integration
reactor: Any = _reactor
Loop = Callable[[socket.socket, udpport.Handler, float, int], tuple[int, int, int]]


def c_loop(sock: socket.socket, handler: udpport.Handler, now: float, budget: int) -> Any:
    assert udpport.serve_batched is not None
    return udpport.serve_batched(sock.fileno(), handler, now, budget)


LOOPS = {"recvmmsg": c_loop, "python": udpport.serve_plain}
if udpport.serve_batched is None:  # the test below fails then; the Python loop is still tested
    del LOOPS["recvmmsg"]


@pytest.fixture(params=sorted(LOOPS))
def loop(request: pytest.FixtureRequest) -> Loop:
    return LOOPS[request.param]


def server(family: int = socket.AF_INET, host: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((host, 0))
    s.setblocking(False)
    return s


def client(host: str, family: int = socket.AF_INET) -> socket.socket:
    c = socket.socket(family, socket.SOCK_DGRAM)
    c.bind((host, 0))
    c.settimeout(5)
    return c


def drain(c: socket.socket) -> list[bytes]:
    got = []
    c.setblocking(False)
    try:
        while True:
            got.append(c.recv(70_000))
    except BlockingIOError:
        pass
    c.settimeout(5)
    return got


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    yield made
    for s in made:
        s.close()


def test_every_datagram_is_answered_across_partial_batches(
    loop: Loop, sockets: list[socket.socket]
) -> None:
    s = server()
    a, b = client("127.0.0.1"), client("127.0.0.2")
    sockets += [s, a, b]
    dest = s.getsockname()
    for i in range(150):  # two full batches of 64 and a partial one
        (a if i % 3 else b).sendto(b"n%d" % i, dest)
    seen: list[tuple[bytes, str, int]] = []

    def handler(data: bytes, host: str, port: int, now: float) -> bytes:
        assert now == 12.5
        seen.append((data, host, port))
        return b"re:" + data

    assert loop(s, handler, 12.5, 1000) == (150, 150, 0)
    assert [d for d, _, _ in seen] == [b"n%d" % i for i in range(150)]
    assert {(h, p) for _, h, p in seen} == {a.getsockname(), b.getsockname()}
    assert drain(a) == [b"re:n%d" % i for i in range(150) if i % 3]
    assert drain(b) == [b"re:n%d" % i for i in range(150) if not i % 3]
    assert loop(s, handler, 12.5, 1000) == (0, 0, 0)  # nothing left: returns, never blocks


def test_the_budget_leaves_the_rest_for_the_next_turn(
    loop: Loop, sockets: list[socket.socket]
) -> None:
    s, a = server(), client("127.0.0.1")
    sockets += [s, a]
    for i in range(25):
        a.sendto(b"%d" % i, s.getsockname())
    handled: list[bytes] = []

    def handler(data: bytes, host: str, port: int, now: float) -> bytes:
        handled.append(data)
        return data

    assert loop(s, handler, 0.0, 10) == (10, 10, 0)
    assert loop(s, handler, 0.0, 10) == (10, 10, 0)
    assert loop(s, handler, 0.0, 10) == (5, 5, 0)
    assert handled == [b"%d" % i for i in range(25)]
    assert len(drain(a)) == 25


def test_none_means_no_reply(loop: Loop, sockets: list[socket.socket]) -> None:
    s, a = server(), client("127.0.0.1")
    sockets += [s, a]
    for i in range(6):
        a.sendto(b"%d" % i, s.getsockname())
    assert loop(s, lambda d, h, p, n: d if int(d) % 2 else None, 0.0, 100) == (6, 3, 0)
    assert drain(a) == [b"1", b"3", b"5"]


@pytest.mark.parametrize(
    ("family", "bind", "sources", "reported"),
    [
        (socket.AF_INET, "127.0.0.1", ["127.0.0.1", "127.1.2.3", "127.255.0.10"], None),
        (  # a dual-stack socket sees IPv4 clients as IPv4-mapped addresses, as Python reports
            socket.AF_INET6,
            "::",
            ["::1", "127.0.0.1", "127.10.200.3"],
            ["::1", "::ffff:127.0.0.1", "::ffff:127.10.200.3"],
        ),
    ],
)
def test_ipv4_and_ipv6_sources_are_reported_and_answered(
    loop: Loop,
    sockets: list[socket.socket],
    family: int,
    bind: str,
    sources: list[str],
    reported: list[str] | None,
) -> None:
    s = server(family, bind)
    sockets.append(s)
    port = s.getsockname()[1]
    clients = []
    for host in sources:
        c = client(host, socket.AF_INET6 if ":" in host else socket.AF_INET)
        sockets.append(c)
        clients.append(c)
        c.sendto(b"hi", ("::1" if ":" in host else "127.0.0.1", port))
    hosts: list[tuple[str, int]] = []
    assert loop(s, lambda d, h, p, n: hosts.append((h, p)) or h.encode(), 0.0, 100) == (3, 3, 0)
    expected = reported or sources
    assert hosts == [(h, c.getsockname()[1]) for h, c in zip(expected, clients, strict=True)]
    # the same source twice: the same answer (the extension reuses its host strings)
    clients[1].sendto(b"again", ("127.0.0.1", port))
    assert loop(s, lambda d, h, p, n: h.encode(), 0.0, 100) == (1, 1, 0)
    for c, h in zip(clients, expected, strict=True):
        assert drain(c) == [h.encode()] * (2 if c is clients[1] else 1)


def test_a_reply_the_kernel_refuses_is_dropped_and_the_others_still_go(
    loop: Loop, sockets: list[socket.socket]
) -> None:
    s, a = server(), client("127.0.0.1")
    sockets += [s, a]
    for i in range(3):
        a.sendto(b"%d" % i, s.getsockname())
    # 70,000 bytes cannot be one UDP datagram (EMSGSIZE): that reply is lost, as on a network
    assert loop(s, lambda d, h, p, n: d * 70_000 if d == b"1" else d, 0.0, 100) == (3, 2, 1)
    assert drain(a) == [b"0", b"2"]


def test_a_datagram_longer_than_any_request_is_dropped(
    loop: Loop, sockets: list[socket.socket]
) -> None:
    s, a = server(), client("127.0.0.1")
    sockets += [s, a]
    a.sendto(b"x" * (udpport.MAX_DATAGRAM + 1), s.getsockname())
    a.sendto(b"x" * udpport.MAX_DATAGRAM, s.getsockname())
    sizes: list[int] = []
    assert loop(s, lambda d, h, p, n: sizes.append(len(d)) or b"ok", 0.0, 100) == (2, 1, 0)
    assert sizes == [udpport.MAX_DATAGRAM]


def test_a_handler_error_does_not_stop_the_port(sockets: list[socket.socket]) -> None:
    answered: list[bytes] = []

    def handler(data: bytes, host: str, port: int, now: float) -> bytes:
        if data == b"boom":
            raise RuntimeError("a bug")
        answered.append(data)
        return data

    port = udpport.BatchPort(0, DatagramProtocol(), "127.0.0.1", reactor=reactor, handler=handler)
    port.startListening()
    try:
        a = client("127.0.0.1")
        sockets.append(a)
        a.sendto(b"boom", ("127.0.0.1", port.getHost().port))
        port.doRead()  # logged, not raised: the reactor would otherwise drop the port
        a.sendto(b"fine", ("127.0.0.1", port.getHost().port))
        port.doRead()
        assert answered == [b"fine"]
        assert drain(a) == [b"fine"]
    finally:
        port.stopListening()


# -- on the reactor, with the real tracker --------------------------------------------------


async def exchange(c: socket.socket, data: bytes, dest: tuple[str, int]) -> Any:
    c.setblocking(False)
    c.sendto(data, dest)
    for _ in range(500):
        try:
            return udp_client.parse_response(c.recv(2048))
        except BlockingIOError:
            await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("no reply")


@pytest.mark.parametrize("batched", [True, False])
@pytest_twisted.ensureDeferred
async def test_the_tracker_answers_ipv4_and_ipv6_peers_through_the_port(
    batched: bool, sockets: list[socket.socket]
) -> None:
    h = Harness()
    h.proto.transport = None  # the harness's fake one: the port is the transport here
    port = udpport.listen(reactor, 0, h.proto, "::", batched=batched)
    try:
        number = port.getHost().port
        peers = []
        for host, dest in [("127.0.0.1", "127.0.0.1"), ("::1", "::1"), ("127.0.0.2", "127.0.0.1")]:
            c = client(host, socket.AF_INET6 if ":" in host else socket.AF_INET)
            sockets.append(c)
            connected = await exchange(c, udp_client.encode_connect_request(7), (dest, number))
            assert isinstance(connected, udp_client.ConnectResponse)
            request = udp_client.encode_announce_request(
                connected.connection_id, 8, b"\xcd" * 20, b"-XX0001-%012d" % len(peers), 0, 5, 0,
                udp.EVENT_STARTED, port=7000 + len(peers),
            )  # fmt: skip
            reply = await exchange(c, request, (dest, number))
            assert isinstance(reply, udp_client.AnnounceResponse)
            peers.append(reply)
        # IPv4 peers get the other IPv4 peer, the IPv6 one sees no IPv4 peers (one family a reply)
        assert udp_client.decode_peers(peers[2].peers) == [("127.0.0.1", 7000)]
        assert udp_client.decode_peers(peers[1].peers, ipv6=True) == []
        assert (peers[2].leechers, peers[2].seeders) == (3, 0)  # counts cover both families
    finally:
        await port.stopListening()


class Flood:
    """A handler that sends one more datagram to the port for each it answers, so the socket is
    never empty: only the per-turn budget lets the reactor do anything else."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.handled = 0
        self.feeder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.feeder.bind(("127.0.0.1", 0))
        self.feeder.setblocking(False)
        self.dest: tuple[str, int] = ("127.0.0.1", 0)

    def __call__(self, data: bytes, host: str, port: int, now: float) -> None:
        self.handled += 1
        if self.handled < self.limit:
            self.feeder.sendto(b"more", self.dest)

    def start(self, dest: tuple[str, int], backlog: int) -> None:
        self.dest = dest
        for _ in range(backlog):
            self.feeder.sendto(b"go", dest)


@pytest.mark.parametrize("batched", [True, False])
@pytest_twisted.ensureDeferred
async def test_http_is_answered_during_a_udp_flood(batched: bool) -> None:
    flood = Flood(limit=200_000)
    port = udpport.BatchPort(
        0, DatagramProtocol(), "127.0.0.1", reactor=reactor, batched=batched, handler=flood
    )
    root = Resource()
    root.putChild(b"health", Data(b"ok", "text/plain"))
    web = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    port.startListening()
    try:
        flood.start(("127.0.0.1", port.getHost().port), backlog=100)
        response = await treq.get(f"http://127.0.0.1:{web.getHost().port}/health")
        assert await response.content() == b"ok"
        during = flood.handled
        # the flood went on through several reactor turns and was still going: an unbounded
        # read loop would have answered all 200,000 datagrams before the HTTP request
        assert udpport.BUDGET < during < flood.limit
    finally:
        flood.limit = 0
        await port.stopListening()
        await web.stopListening()
        flood.feeder.close()


def test_the_receive_queue_holds_a_burst_not_the_default_208_kib() -> None:
    """A flood's burst must not crowd out other clients' datagrams: the port asks the kernel
    for RECEIVE_BUFFER, which grants up to net.core.rmem_max (and reports it doubled)."""
    with open("/proc/sys/net/core/rmem_max") as f:
        rmem_max = int(f.read())
    silent = DatagramProtocol()
    silent.reply = lambda *request: None  # type: ignore[attr-defined]
    port = udpport.listen(_reactor, 0, silent, "127.0.0.1")
    try:
        granted = port.socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    finally:
        port.stopListening()
    assert granted == 2 * min(udpport.RECEIVE_BUFFER, rmem_max)
