"""/health pings the database at most once a second, whatever the request rate (an injected
clock: no wall time)."""

from __future__ import annotations

from typing import Any

from helpers import Conn, FakeStore, build_stack, get_request
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from weightless.registry.store import StoreUnavailable
from weightless.web.health import PING_TIMEOUT, Health


class Pings:
    def __init__(self) -> None:
        self.calls: list[Deferred[None]] = []
        self.mode = "ok"

    def __call__(self) -> Deferred[None]:
        if self.mode == "ok":
            d: Deferred[None] = succeed(None)
        elif self.mode == "down":
            d = fail(StoreUnavailable("disk I/O error"))
        else:
            d = Deferred()
        self.calls.append(d)
        return d


def results(ds: list[Deferred[Any]]) -> list[Any]:
    out: list[Any] = []
    for d in ds:
        d.addBoth(out.append)
    return out


def test_a_thousand_requests_a_second_make_one_ping_a_second() -> None:
    clock, pings = Clock(), Pings()
    health = Health(pings, clock)
    answers = []
    for _ in range(10):  # ten seconds
        for _ in range(1000):
            answers += results([health.check()])
            clock.advance(0.001)
    assert len(pings.calls) == 10
    assert answers == [None] * 10_000


def test_a_failure_is_shared_until_the_next_ping() -> None:
    clock, pings = Clock(), Pings()
    pings.mode = "down"
    health = Health(pings, clock)
    assert results([health.check() for _ in range(50)]) == ["disk I/O error"] * 50
    assert len(pings.calls) == 1
    pings.mode = "ok"
    clock.advance(0.99)
    assert results([health.check()]) == ["disk I/O error"]
    clock.advance(0.01)
    assert results([health.check()]) == [None]
    assert len(pings.calls) == 2


def test_requests_during_a_hung_ping_wait_for_it_and_start_no_other() -> None:
    clock, pings = Clock(), Pings()
    pings.mode = "hang"
    health = Health(pings, clock)
    waiting = []
    for _ in range(int(PING_TIMEOUT * 10)):
        waiting.append(health.check())
        clock.advance(0.1)
    assert len(pings.calls) == 1
    got = results(waiting)
    assert got and all(isinstance(r, str) for r in got) and len(got) == len(waiting)
    assert pings.calls[0].called  # given up, not left dangling


def test_a_caller_that_goes_away_takes_nothing_from_the_others_or_the_ping() -> None:
    """The first /health after start is often from a client that has hung up by the time it
    is read (its connection waited in the listen queue while the process started)."""
    clock, pings = Clock(), Pings()
    pings.mode = "hang"
    health = Health(pings, clock)
    gone, other = health.check(), health.check()
    gone.cancel()  # what Klein does when the client's connection is lost
    gone.addErrback(lambda f: None)
    assert not pings.calls[0].called  # the ping goes on
    clock.advance(0.5)
    pings.calls[0].callback(None)
    assert results([other]) == [None]
    assert results([health.check()]) == [None]  # the answer of the next second: healthy
    assert len(pings.calls) == 1


def test_every_caller_of_a_ping_going_away_leaves_its_answer_for_the_next() -> None:
    clock, pings = Clock(), Pings()
    pings.mode = "hang"
    health = Health(pings, clock)
    for _ in range(5):
        d = health.check()
        d.cancel()
        d.addErrback(lambda f: None)
    pings.calls[0].callback(None)
    assert results([health.check() for _ in range(3)]) == [None] * 3
    assert len(pings.calls) == 1


def test_a_health_request_dropped_mid_ping_leaves_the_next_ones_healthy() -> None:
    """Through the wiring that ships: Klein cancels the answer of a dropped connection."""
    pings = Pings()
    pings.mode = "hang"
    stack = build_stack(FakeStore(pings))
    first = Conn(stack)
    first.send(get_request(b"/health"))
    first.protocol.connectionLost(Failure(ConnectionDone()))
    assert not pings.calls[0].called
    waiting = Conn(stack)
    waiting.send(get_request(b"/health"))
    pings.calls[0].callback(None)
    [reply] = waiting.replies()
    assert (reply.status, reply.body) == (200, b"OK")
    assert Conn(stack).get(b"/health").status == 200
    assert len(pings.calls) == 1
