"""Workers' routers in one process, on a reactor in memory: two joined by in-memory Unix sockets
(the bytes the mesh writes, moved by the test), and one alone whose peer never starts, its
clock moved past the connect patience by the test."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote_from_bytes

import bencodepy
import pytest
import udp_client
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectError
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.test import iosim

from weightless.cluster.ipc import CONNECT_PATIENCE, RETRY_EVERY, Mesh
from weightless.cluster.owner import owner_of, steering_program
from weightless.cluster.router import BUSY, Router
from weightless.metrics import Stats
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.catalog import Catalog
from weightless.tracker.core import Policy, Tracker
from weightless.tracker.swarm import SwarmStore
from weightless.wire import udp

T = TypeVar("T")


def hash_owned_by(index: int, workers: int = 2, salt: int = 0) -> bytes:
    for i in range(1000):
        h = i.to_bytes(4, "big") + bytes([salt]) * 16
        if owner_of(h, workers) == index:
            return h
    raise AssertionError


class Sockets(MemoryReactorClock):
    """Unix sockets in memory: a connection to a path a worker listens on is joined to it
    (``flush`` moves the bytes both ways until nothing is left); to any other path it fails,
    as a connection to a Unix socket nobody opened does."""

    def __init__(self) -> None:
        super().__init__()
        self.pumps: list[iosim.IOPump] = []

    def connectUNIX(  # type: ignore[override]
        self, address: str, factory: Any, timeout: float = 30, checkPID: bool = False
    ) -> Any:
        connector = super().connectUNIX(address, factory, timeout, checkPID)
        for path, server_factory, *_ in self.unixServers:
            if path == address:
                server = server_factory.buildProtocol(None)
                client = factory.buildProtocol(None)
                server_io, client_io = iosim.makeFakeServer(server), iosim.makeFakeClient(client)
                self.pumps.append(iosim.connect(server, server_io, client, client_io, clock=self))
                return connector
        refused = Failure(ConnectError(string=f"no socket at {address}"))
        factory.clientConnectionFailed(connector, refused)
        return connector

    def flush(self) -> None:
        while any([pump.pump() for pump in self.pumps]):
            pass


def worker(index: int, directory: Path, reactor: Sockets) -> Router:
    rng = random.Random(index)
    tracker = Tracker(
        Policy(open=True),
        Catalog(),
        SwarmStore(rng.random),
        PendingWrites(),
        None,
        None,
        rng.random,
    )
    mesh = Mesh(index, 2, str(directory), reactor)
    mesh.listen()
    router = Router(mesh, tracker)
    stats = Stats()
    stats.count("http", "announce", "ok")
    router.stats_of = lambda: {**stats.to_dict(), "peers": tracker.swarms.peer_count}
    return router


@pytest.fixture
def sockets() -> Sockets:
    return Sockets()


@pytest.fixture
def pair(tmp_path: Path, sockets: Sockets) -> Iterator[tuple[Router, Router]]:
    a, b = worker(0, tmp_path, sockets), worker(1, tmp_path, sockets)
    yield a, b
    for r in (a, b):
        r.mesh.close()
    sockets.flush()


def query(info_hash: bytes, peer: int) -> bytes:
    return (
        f"info_hash={quote_from_bytes(info_hash)}&peer_id=-XX0001-{peer:012d}"
        f"&port={6000 + peer}&left=5"
    ).encode()


def settled(d: Deferred[T] | T, sockets: Sockets | None = None) -> T:
    """What ``d`` has fired with, once ``sockets`` moved every byte (the test fails if it has
    not fired); a value that is not a Deferred, as it is."""
    if sockets is not None:
        sockets.flush()
    if not isinstance(d, Deferred):
        return d
    results: list[T] = []
    d.addCallback(results.append)
    assert results, "still waiting"
    return results[0]


def announce(sockets: Sockets, router: Router, info_hash: bytes, peer: int) -> dict[bytes, Any]:
    body = router.http_announce(query(info_hash, peer), None, "10.0.0.1", 1000.0)
    decoded: dict[bytes, Any] = bencodepy.decode(settled(body, sockets))
    return decoded


def test_announces_reach_the_owner_whichever_worker_gets_them(pair: Any, sockets: Sockets) -> None:
    a, b = pair
    h = hash_owned_by(1)
    announce(sockets, a, h, 1)  # forwarded to b
    reply = announce(sockets, b, h, 2)  # local to b
    assert reply[b"incomplete"] == 2 and len(reply[b"peers"]) == 6
    assert a.tracker.swarms.peer_count == 0 and b.tracker.swarms.peer_count == 2
    reply = announce(sockets, a, h, 3)
    assert len(reply[b"peers"]) == 12


def test_scrape_fans_out_and_gathers(pair: Any, sockets: Sockets) -> None:
    a, b = pair
    mine, theirs = hash_owned_by(0), hash_owned_by(1)
    announce(sockets, a, mine, 1)
    announce(sockets, a, theirs, 2)
    announce(sockets, b, theirs, 3)
    a.tracker.catalog.block([hash_owned_by(1, salt=9).hex()])
    q = b"&".join(
        b"info_hash=" + quote_from_bytes(h).encode()
        for h in (mine, theirs, hash_owned_by(1, salt=9))
    )
    body = a.http_scrape(q, None)
    assert isinstance(body, Deferred)
    files = bencodepy.decode(settled(body, sockets))[b"files"]
    assert files == {
        mine: {b"complete": 0, b"downloaded": 0, b"incomplete": 1},
        theirs: {b"complete": 0, b"downloaded": 0, b"incomplete": 2},
    }


def test_stats_from_every_worker(pair: Any, sockets: Sockets) -> None:
    a, _ = pair
    announce(sockets, a, hash_owned_by(1), 1)
    stats = settled(a.all_stats(), sockets)
    assert [s["peers"] for s in stats] == [0, 1]


def test_stats_leave_out_a_worker_that_does_not_answer(tmp_path: Path) -> None:
    clock = Sockets()
    a = worker(0, tmp_path, clock)  # worker 1 never starts
    stats = a.all_stats()
    clock.pump([RETRY_EVERY] * round(CONNECT_PATIENCE / RETRY_EVERY + 1))
    assert [s["peers"] for s in settled(stats)] == [0]
    a.mesh.close()


def test_udp_announces_are_answered_by_the_owner(pair: Any, sockets: Sockets) -> None:
    a, b = pair
    seen: Deferred[tuple[bytes, str, int]] = Deferred()
    b.udp_answer = lambda data, host, port, now: seen.callback((data, host, port))
    request = udp_client.encode_announce_request(1, 2, hash_owned_by(1), b"p" * 20, 0, 1, 0, 0)
    assert a.udp_forward(udp.parse_request(request), request, "10.1.1.1", 999, 1.0)
    assert not b.udp_forward(udp.parse_request(request), request, "10.1.1.1", 999, 1.0)
    assert settled(seen, sockets) == (request, "10.1.1.1", 999)


def test_catalog_changes_reach_the_others(pair: Any, sockets: Sockets) -> None:
    a, b = pair
    got: Deferred[dict[str, Any]] = Deferred()
    b.on_catalog = got.callback
    a.catalog_changed({"op": "taken_down", "args": [["ab" * 20]]})
    assert settled(got, sockets) == {"op": "taken_down", "args": [["ab" * 20]]}


def test_a_missing_owner_gets_a_busy_failure_not_a_hang(tmp_path: Path) -> None:
    clock = Sockets()
    a = worker(0, tmp_path, clock)  # worker 1 never starts
    reply = a.http_announce(query(hash_owned_by(1), 1), None, "10.0.0.1", 1000.0)
    assert isinstance(reply, Deferred)
    clock.pump([RETRY_EVERY] * round(CONNECT_PATIENCE / RETRY_EVERY + 1))
    assert settled(reply) == BUSY
    a.mesh.close()


def test_steering_program_matches_owner_of() -> None:
    """Interpret the BPF program the kernel runs and compare it with owner_of."""
    for workers in (2, 3, 5):
        program = steering_program(workers)
        for _ in range(200):
            h = random.randbytes(20)
            packet = (1).to_bytes(8, "big") + (1).to_bytes(4, "big") + b"\0" * 4 + h
            assert run_bpf(program, packet) == owner_of(h, workers)
        connect = (0x41727101980).to_bytes(8, "big") + bytes(8)
        assert run_bpf(program, connect) >= workers  # the kernel's own hash decides


def run_bpf(program: list[tuple[int, int, int, int]], packet: bytes) -> int:
    a, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        if code == 0x20:
            a = int.from_bytes(packet[k : k + 4], "big")
        elif code == 0x15:
            pc += jt if a == k else jf
        elif code == 0x94:
            a %= k
        elif code == 0x16:
            return a
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unknown opcode {code:#x}")
