"""Announce and scrape over HTTP: rate limit, metrics and the tracker, for any HTTP adapter
(the fast front protocol and the Klein routes both call this)."""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred

from weightless.metrics import Stats
from weightless.tracker.core import Tracker
from weightless.tracker.ratelimit import Limiter
from weightless.wire import bencode

if TYPE_CHECKING:
    from weightless.cluster.router import Router
    from weightless.sharedswarms.tracker import SharedTracker

Body = bytes | Deferred[bytes]
RATE_LIMITED_REPLY = bencode.failure(bencode.RATE_LIMITED)
FAILURE_MARK = b"d14:failure reason"


class TrackerHTTP:
    def __init__(
        self,
        tracker: Tracker,
        limiter: Limiter,
        stats: Stats,
        clock: Callable[[], float],
        timer: Callable[[], float] = perf_counter,
        router: Router | None = None,
        shared: SharedTracker | None = None,
    ) -> None:
        self.tracker = tracker
        self.limiter = limiter
        self.stats = stats
        self.clock = clock
        self.timer = timer
        # swarms in Redis: every process asks Redis itself; else, with several workers, the
        # router sends work to the worker owning the swarm
        front: Router | SharedTracker | Tracker = shared or router or tracker
        self._announce: Callable[[bytes, bytes | None, str, float], Body] = front.http_announce
        self._scrape: Callable[[bytes, bytes | None], Body] = front.http_scrape

    def announce(self, passkey: bytes | None, query: bytes, ip: str) -> Body:
        """The bencoded reply to an announce (always sent with status 200); a Deferred when
        another worker answers it."""
        started = self.timer()
        now = self.clock()
        if not self.limiter.allow(ip, now):
            self.stats.count("http", "announce", "rate_limited")
            return RATE_LIMITED_REPLY
        body = self._announce(query, passkey, ip, now)
        if isinstance(body, Deferred):
            return body.addCallback(self._announced, started)
        return self._announced(body, started)

    def _announced(self, body: bytes, started: float) -> bytes:
        self.stats.count("http", "announce", "failure" if body.startswith(FAILURE_MARK) else "ok")
        self.stats.observe(self.timer() - started)
        return body

    def scrape(self, passkey: bytes | None, query: bytes, ip: str) -> tuple[int, Body]:
        """(status, body): 429 over the rate limit, else 200 with a bencoded reply."""
        if not self.limiter.allow(ip, self.clock()):
            self.stats.count("http", "scrape", "rate_limited")
            return 429, b"Rate limit exceeded. Please slow down.\n"
        body = self._scrape(query, passkey)
        if isinstance(body, Deferred):
            return 200, body.addCallback(self._scraped)
        return 200, self._scraped(body)

    def _scraped(self, body: bytes) -> bytes:
        self.stats.count("http", "scrape", "failure" if body.startswith(FAILURE_MARK) else "ok")
        return body

    def retry_after(self, ip: str) -> int:
        return self.limiter.retry_after(ip)
