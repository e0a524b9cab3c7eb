"""Worker-to-worker messages (weightless.cluster.ipc) over in-memory connections: the frame
on the wire, requests answered or failed, one-way notes, deadlines, lost connections, and
dialling a worker that is starting. (Real Unix sockets: tests/unit/cluster/test_router.py.)"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.test.iosim import IOPump, connect, makeFakeClient, makeFakeServer

from weightless.cluster import ipc
from weightless.cluster.ipc import Link, Mesh, PeerGone

from .kit import link

PING, NOTE, SLOW = 7, 8, 9


def mesh(index: int, workers: int = 2, reactor: Any = None, directory: str = "/x") -> Mesh:
    m = Mesh(index, workers, directory, reactor or MemoryReactorClock())
    m.handlers[PING] = lambda payload: b"pong:" + payload
    return m


def outcome(d: Deferred[bytes]) -> list[Any]:
    """What ``d`` gave: [bytes] or [Failure]; [] while it waits."""
    got: list[Any] = []
    d.addBoth(got.append)
    return got


def test_socket_path() -> None:
    assert ipc.socket_path("/run/w", 3) == "/run/w/worker-3.sock"


def test_a_frame_is_length_kind_request_id_payload() -> None:
    one = Link(mesh(0))
    transport = StringTransport()
    one.makeConnection(transport)
    outcome(one.request(PING, b"abc", 0x01020304, 99.0))
    one.note(NOTE, b"z")
    assert (
        transport.value()
        == (
            struct.pack(">I", 8)
            + b"\x07\x01\x02\x03\x04abc"
            + struct.pack(">I", 6)
            + b"\x08"
            + bytes(4)
        )
        + b"z"
    )


def test_a_request_gets_the_handlers_answer() -> None:
    a, b = mesh(0), mesh(1)
    pump = link(a, b)
    got = outcome(a.request(1, PING, b"hi"))
    pump.flush()
    assert got == [b"pong:hi"]
    got = outcome(b.request(0, PING, b"back"))  # either end may ask
    pump.flush()
    assert got == [b"pong:back"]


def test_answers_later_and_empty_answers() -> None:
    a, b = mesh(0), mesh(1)
    later: Deferred[bytes] = Deferred()
    b.handlers[SLOW] = lambda payload: later
    b.handlers[NOTE] = lambda payload: None
    pump = link(a, b)
    slow, empty = outcome(a.request(1, SLOW, b"")), outcome(a.request(1, NOTE, b""))
    pump.flush()
    assert (slow, empty) == ([], [b""])
    later.callback(b"done")
    pump.flush()
    assert slow == [b"done"]


def test_answers_find_their_request_by_id() -> None:
    a, b = mesh(0), mesh(1)
    held: list[Deferred[bytes]] = []

    def hold(payload: bytes) -> Deferred[bytes]:
        held.append(Deferred())
        return held[-1]

    b.handlers[SLOW] = hold
    pump = link(a, b)
    first, second = outcome(a.request(1, SLOW, b"1")), outcome(a.request(1, SLOW, b"2"))
    pump.flush()
    held[1].callback(b"second")
    held[0].callback(b"first")
    pump.flush()
    assert (first, second) == ([b"first"], [b"second"])


def failure_of(got: list[Any]) -> str:
    (f,) = got
    assert isinstance(f, Failure) and f.check(PeerGone), got
    return f.getErrorMessage()


def test_a_handler_that_fails_fails_the_request_with_its_message() -> None:
    a, b = mesh(0), mesh(1)

    def broken(payload: bytes) -> bytes:
        raise ValueError("no such swarm")

    b.handlers[SLOW] = broken
    b.handlers[NOTE] = lambda payload: Deferred.fromCoroutine(_fail("store down"))
    pump = link(a, b)
    got, later = outcome(a.request(1, SLOW, b"")), outcome(a.request(1, NOTE, b""))
    pump.flush()
    assert failure_of(got) == "no such swarm"
    assert failure_of(later) == "store down"


async def _fail(message: str) -> bytes:
    raise RuntimeError(message)


def test_an_unknown_kind_fails_the_request() -> None:
    a, b = mesh(0), mesh(1)
    pump = link(a, b)
    got = outcome(a.request(1, 200, b""))
    pump.flush()
    assert failure_of(got) == "unknown message kind 200"


def test_notes_reach_the_handler_and_are_not_answered() -> None:
    a, b = mesh(0), mesh(1)
    seen: list[bytes] = []
    b.handlers[NOTE] = lambda payload: seen.append(payload) or b"ignored"  # type: ignore[func-returns-value]
    pump = link(a, b)
    a.note(1, NOTE, b"one")
    a.note(1, NOTE, b"two")
    pump.flush()
    assert seen == [b"one", b"two"]
    assert a.links[1].waiting == {}
    got = outcome(a.request(1, PING, b"still there"))  # no stray answer came before
    pump.flush()
    assert got == [b"pong:still there"]


def test_nothing_goes_back_for_a_note() -> None:
    b = mesh(1)
    b.handlers[NOTE] = lambda payload: b"an answer nobody asked for"
    one = Link(b)
    transport = StringTransport()
    one.makeConnection(transport)
    for kind in (NOTE, PING):
        frame = struct.pack(">BI", kind, 0) + b"x"
        one.dataReceived(struct.pack(">I", len(frame)) + frame)
    assert transport.value() == b""


def test_a_note_whose_handler_fails_breaks_nothing() -> None:
    a, b = mesh(0), mesh(1)

    def broken(payload: bytes) -> bytes:
        raise ValueError("bad note")

    b.handlers[NOTE] = broken
    b.handlers[SLOW] = lambda payload: Deferred.fromCoroutine(_fail("bad later"))
    pump = link(a, b)
    a.note(1, NOTE, b"x")
    a.note(1, SLOW, b"x")
    got = outcome(a.request(1, PING, b"ok"))
    pump.flush()
    assert got == [b"pong:ok"]


def test_broadcast_goes_to_every_other_worker() -> None:
    meshes = [mesh(i, 3) for i in range(3)]
    seen: list[tuple[int, bytes]] = []
    for m in meshes:
        m.handlers[NOTE] = lambda payload, i=m.index: seen.append((i, payload))  # type: ignore[misc]
    pumps = [link(meshes[1], meshes[0]), link(meshes[1], meshes[2])]
    meshes[1].broadcast(NOTE, b"catalog")
    for pump in pumps:
        pump.flush()
    assert sorted(seen) == [(0, b"catalog"), (2, b"catalog")]


def test_request_ids_wrap_and_skip_zero() -> None:
    a = mesh(0)
    one = Link(a)
    transport = StringTransport()
    one.makeConnection(transport)
    a.links[1] = one
    a._rid = 0xFFFFFFFF - 1
    for _ in range(2):
        outcome(a.request(1, PING, b""))
    assert sorted(one.waiting) == [1, 0xFFFFFFFF]


# -- deadlines and lost connections


def test_a_request_not_answered_in_time_fails(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    a, b = mesh(0, reactor=clock, directory=str(tmp_path)), mesh(1)
    b.handlers[SLOW] = lambda payload: Deferred()
    a.listen()
    pump = link(a, b)
    got = outcome(a.request(1, SLOW, b""))
    pump.flush()
    clock.advance(ipc.REQUEST_TIMEOUT - ipc.EXPIRE_EVERY)
    assert got == []
    clock.advance(ipc.EXPIRE_EVERY * 2)
    assert failure_of(got) == f"no answer from the worker within {ipc.REQUEST_TIMEOUT:g} s"
    assert a.links[1].waiting == {}


def test_a_late_answer_is_dropped(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    a, b = mesh(0, reactor=clock, directory=str(tmp_path)), mesh(1)
    later: Deferred[bytes] = Deferred()
    b.handlers[SLOW] = lambda payload: later
    a.listen()
    pump = link(a, b)
    got = outcome(a.request(1, SLOW, b""))
    pump.flush()
    clock.advance(ipc.REQUEST_TIMEOUT + ipc.EXPIRE_EVERY)
    later.callback(b"too late")
    pump.flush()
    assert len(got) == 1 and failure_of(got)


def test_a_lost_connection_fails_what_waits_and_forgets_the_link() -> None:
    a, b = mesh(0), mesh(1)
    b.handlers[SLOW] = lambda payload: Deferred()
    pump = link(a, b)
    got = outcome(a.request(1, SLOW, b""))
    pump.flush()
    a.links[1].transport.loseConnection()  # type: ignore[union-attr]
    pump.flush()
    assert failure_of(got) == "connection to the worker was lost"
    assert a.links == {} and b.links == {}


def test_cancelling_a_request_forgets_it() -> None:
    a, b = mesh(0), mesh(1)
    b.handlers[SLOW] = lambda payload: Deferred()
    pump = link(a, b)
    d = a.request(1, SLOW, b"")
    got = outcome(d)
    d.cancel()
    pump.flush()
    assert a.links[1].waiting == {} and len(got) == 1


# -- listening and dialling


def test_listen_replaces_a_stale_socket_file_and_close_stops_everything(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    stale = tmp_path / "worker-0.sock"
    stale.write_bytes(b"")
    a, b = mesh(0, reactor=clock, directory=str(tmp_path)), mesh(1)
    a.listen()
    assert not stale.exists()
    (address, factory, _, mode, _) = clock.unixServers[0]
    assert address == str(stale) and mode == 0o600
    assert isinstance(factory.buildProtocol(None), Link)
    pump = link(a, b)
    assert a._expiry is not None and a._expiry.running
    a.close()
    pump.flush()
    assert not a._expiry.running
    assert a.links == {} and b.links == {}


class Dialled:
    """The dials a Mesh made on a MemoryReactorClock, to answer them."""

    def __init__(self, clock: MemoryReactorClock) -> None:
        self.clock = clock

    def paths(self) -> list[str]:
        return [c[0] for c in self.clock.unixClients]

    def refuse(self, n: int) -> None:
        _, factory, _, _ = self.clock.unixClients[n]
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))

    def accept(self, n: int, other: Mesh) -> IOPump:
        _, factory, _, _ = self.clock.unixClients[n]
        client = factory.buildProtocol(None)
        server = Link(other)
        return connect(server, makeFakeServer(server), client, makeFakeClient(client))


def test_callers_at_the_same_time_share_one_dial(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    a, b = mesh(0, reactor=clock, directory=str(tmp_path)), mesh(1)
    dials = Dialled(clock)
    first, second = outcome(a.request(1, PING, b"1")), outcome(a.request(1, PING, b"2"))
    assert dials.paths() == [str(tmp_path / "worker-1.sock")]
    pump = dials.accept(0, b)
    pump.flush()
    assert (first, second) == ([b"pong:1"], [b"pong:2"])
    assert 1 in a.links
    got = outcome(a.request(1, PING, b"3"))  # the link is kept
    pump.flush()
    assert got == [b"pong:3"] and len(dials.paths()) == 1


def test_a_starting_worker_gets_more_tries(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    a, b = mesh(0, reactor=clock, directory=str(tmp_path)), mesh(1)
    dials = Dialled(clock)
    got = outcome(a.request(1, PING, b"x"))
    dials.refuse(0)
    assert len(dials.paths()) == 1 and got == []
    clock.advance(ipc.RETRY_EVERY)
    assert len(dials.paths()) == 2
    dials.accept(1, b).flush()
    assert got == [b"pong:x"]


def test_a_worker_that_stays_down_is_gone_after_the_patience(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    a = mesh(0, reactor=clock, directory=str(tmp_path))
    dials = Dialled(clock)
    got = outcome(a.request(1, PING, b"x"))
    a.note(1, NOTE, b"lost quietly")
    tries = 0
    while not got:
        dials.refuse(tries)
        tries += 1
        clock.advance(ipc.RETRY_EVERY)
    assert failure_of(got) == "worker 1 is not reachable"
    assert tries == pytest.approx(ipc.CONNECT_PATIENCE / ipc.RETRY_EVERY, abs=2)
    assert a.links == {} and a._waiters == {}


def test_mesh_close_without_listening() -> None:
    assert mesh(0).close() is None  # nothing to wait for
