"""/health pings the database at most once a second, whatever the request rate (an injected
clock: no wall time)."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

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
