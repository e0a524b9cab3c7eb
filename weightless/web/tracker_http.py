"""Announce and scrape over HTTP: rate limit, metrics and the tracker, for any HTTP adapter
(the fast front protocol and the Klein routes both call this)."""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

from weightless.metrics import Stats
from weightless.tracker.core import Tracker
from weightless.tracker.ratelimit import RateLimiter
from weightless.wire import bencode

RATE_LIMITED_REPLY = bencode.failure(bencode.RATE_LIMITED)
FAILURE_MARK = b"d14:failure reason"


class TrackerHTTP:
    def __init__(
        self,
        tracker: Tracker,
        limiter: RateLimiter,
        stats: Stats,
        clock: Callable[[], float],
        timer: Callable[[], float] = perf_counter,
    ) -> None:
        self.tracker = tracker
        self.limiter = limiter
        self.stats = stats
        self.clock = clock
        self.timer = timer

    def announce(self, passkey: bytes | None, query: bytes, ip: str) -> bytes:
        """The bencoded reply to an announce (always sent with status 200)."""
        started = self.timer()
        now = self.clock()
        if not self.limiter.allow(ip, now):
            self.stats.count("http", "announce", "rate_limited")
            return RATE_LIMITED_REPLY
        body = self.tracker.http_announce(query, passkey, ip, now)
        self.stats.count("http", "announce", "failure" if body.startswith(FAILURE_MARK) else "ok")
        self.stats.observe(self.timer() - started)
        return body

    def scrape(self, passkey: bytes | None, query: bytes, ip: str) -> tuple[int, bytes]:
        """(status, body): 429 over the rate limit, else 200 with a bencoded reply."""
        if not self.limiter.allow(ip, self.clock()):
            self.stats.count("http", "scrape", "rate_limited")
            return 429, b"Rate limit exceeded. Please slow down.\n"
        body = self.tracker.http_scrape(query, passkey)
        self.stats.count("http", "scrape", "failure" if body.startswith(FAILURE_MARK) else "ok")
        return 200, body

    def retry_after(self, ip: str) -> int:
        return self.limiter.retry_after(ip)
