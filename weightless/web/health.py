"""What ``/health`` answers: the database pinged at most once a second, whatever the request
rate; every request in between shares the last answer (or the ping in flight)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

PING_EVERY = 1.0  # seconds: at most one ping started per interval
PING_TIMEOUT = 2.0  # seconds before a ping that does not answer counts as down


class Health:
    """``check()`` fires with None when the database answered, else the reason it did not."""

    log = Logger()

    def __init__(
        self,
        ping: Callable[[], Deferred[Any]],
        reactor: IReactorTime,
        every: float = PING_EVERY,
        timeout: float = PING_TIMEOUT,
    ) -> None:
        self.ping = ping
        self.reactor = reactor
        self.every = every
        self.timeout = timeout
        self.pings = 0  # started so far
        self._started = float("-inf")
        self._last: str | None = None
        self._waiting: list[Deferred[str | None]] | None = None  # a ping is in flight

    def check(self) -> Deferred[str | None]:
        if self._waiting is not None:
            shared: Deferred[str | None] = Deferred()
            self._waiting.append(shared)
            return shared
        now = self.reactor.seconds()
        if now - self._started < self.every:
            return succeed(self._last)
        self._started = now
        self._waiting = []
        self.pings += 1
        d = self.ping()
        d.addTimeout(self.timeout, self.reactor)
        result: Deferred[str | None] = d.addCallbacks(lambda _: None, self._down)
        return result.addCallback(self._settle)

    def _down(self, failure: Any) -> str:
        reason: str = failure.getErrorMessage() or "no answer"
        self.log.warn("health check: database unreachable: {e}", e=reason)
        return reason

    def _settle(self, reason: str | None) -> str | None:
        self._last = reason
        waiting, self._waiting = self._waiting or [], None
        for d in waiting:
            d.callback(reason)
        return reason
