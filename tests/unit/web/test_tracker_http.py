"""Announce and scrape over HTTP, whichever adapter receives them (weightless.web.tracker_http):
the rate limit answers before the tracker is asked, each answer is counted by outcome for
/metrics, announces are timed, and with several workers the router answers instead."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from weightless.metrics import Stats
from weightless.web.tracker_http import RATE_LIMITED_REPLY, TrackerHTTP
from weightless.wire import bencode

OK = b"d8:intervali1800e5:peers0:e"
FAILED = bencode.failure("invalid info_hash")


class Limiter:
    def __init__(self, allowed: bool = True) -> None:
        self.allowed = allowed
        self.asked: list[tuple[str, float]] = []

    def allow(self, ip: str, now: float) -> bool:
        self.asked.append((ip, now))
        return self.allowed

    def retry_after(self, ip: str) -> int:
        return 7


class Answers:
    """A tracker (or router) that answers with ``body`` and records what it was asked."""

    def __init__(self, body: Any = OK) -> None:
        self.body = body
        self.announces: list[tuple[bytes, bytes | None, str, float]] = []
        self.scrapes: list[tuple[bytes, bytes | None]] = []

    def http_announce(self, query: bytes, passkey: bytes | None, ip: str, now: float) -> Any:
        self.announces.append((query, passkey, ip, now))
        return self.body

    def http_scrape(self, query: bytes, passkey: bytes | None) -> Any:
        self.scrapes.append((query, passkey))
        return self.body


def make(
    body: Any = OK, allowed: bool = True, router: Answers | None = None
) -> tuple[TrackerHTTP, Answers, Stats]:
    tracker, stats = Answers(body), Stats()
    ticks = iter([10.0, 10.25, 11.0, 11.5])
    http = TrackerHTTP(
        tracker,  # type: ignore[arg-type]
        Limiter(allowed),
        stats,
        clock=lambda: 500.0,
        timer=lambda: next(ticks),
        router=router,  # type: ignore[arg-type]
    )
    return http, tracker, stats


def test_an_announce_is_answered_counted_and_timed() -> None:
    http, tracker, stats = make()
    assert http.announce(b"pk", b"info_hash=x", "10.0.0.1") == OK
    assert tracker.announces == [(b"info_hash=x", b"pk", "10.0.0.1", 500.0)]
    assert stats.requests == {("http", "announce", "ok"): 1}
    assert sum(stats.latency_counts) == 1 and stats.latency_sum == 0.25


def test_a_failure_reason_is_counted_as_a_failure() -> None:
    http, _, stats = make(FAILED)
    assert http.announce(None, b"", "10.0.0.1") == FAILED
    status, body = http.scrape(None, b"", "10.0.0.1")
    assert (status, body) == (200, FAILED)
    assert stats.requests == {("http", "announce", "failure"): 1, ("http", "scrape", "failure"): 1}


def test_over_the_rate_limit_the_tracker_is_not_asked() -> None:
    http, tracker, stats = make(allowed=False)
    assert http.announce(None, b"info_hash=x", "10.0.0.1") == RATE_LIMITED_REPLY
    assert bencode.failure(bencode.RATE_LIMITED) == RATE_LIMITED_REPLY
    assert http.scrape(None, b"", "10.0.0.1") == (429, b"Rate limit exceeded. Please slow down.\n")
    assert tracker.announces == [] and tracker.scrapes == []
    assert stats.requests == {
        ("http", "announce", "rate_limited"): 1,
        ("http", "scrape", "rate_limited"): 1,
    }
    assert sum(stats.latency_counts) == 0  # a refused announce is not timed
    assert http.retry_after("10.0.0.1") == 7


def test_a_scrape_is_answered_and_counted() -> None:
    http, tracker, stats = make()
    assert http.scrape(b"pk", b"info_hash=y", "10.0.0.1") == (200, OK)
    assert tracker.scrapes == [(b"info_hash=y", b"pk")]
    assert stats.requests == {("http", "scrape", "ok"): 1}


def test_with_workers_the_router_answers_and_is_counted_when_it_does() -> None:
    later: Deferred[bytes] = Deferred()
    router = Answers(later)
    http, tracker, stats = make(router=router)
    answer = http.announce(None, b"info_hash=z", "10.0.0.1")
    assert isinstance(answer, Deferred)
    assert tracker.announces == [] and len(router.announces) == 1
    assert stats.requests == {}  # not yet answered
    got: list[bytes] = []
    answer.addCallback(got.append)
    later.callback(OK)
    assert got == [OK]
    assert stats.requests == {("http", "announce", "ok"): 1}
    router.body = later = Deferred()
    status, scraped = http.scrape(None, b"info_hash=z", "10.0.0.1")
    assert status == 200 and isinstance(scraped, Deferred) and router.scrapes
    later.callback(FAILED)
    assert stats.requests[("http", "scrape", "failure")] == 1
