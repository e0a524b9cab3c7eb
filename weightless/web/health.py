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
        """Each caller gets a Deferred of its own: one that goes away (Klein cancels the
        answer of a client that hung up) takes nothing from the others, and never the ping
        itself, whose answer is the next second's."""
        now = self.reactor.seconds()
        if self._waiting is None and now - self._started >= self.every:
            self._start(now)
        if self._waiting is None:  # answered at once, or within the last interval
            return succeed(self._last)
        mine: Deferred[str | None] = Deferred()
        self._waiting.append(mine)
        return mine

    def _start(self, now: float) -> None:
        self._started = now
        self._waiting = []
        self.pings += 1
        d = self.ping()
        d.addTimeout(self.timeout, self.reactor)
        d.addCallbacks(lambda _: None, self._down).addCallback(self._settle)

    def _down(self, failure: Any) -> str:
        reason: str = failure.getErrorMessage() or "no answer"
        self.log.warn("health check: database unreachable: {e}", e=reason)
        return reason

    def _settle(self, reason: str | None) -> None:
        self._last = reason
        waiting, self._waiting = self._waiting or [], None
        for d in waiting:
            if not d.called:  # not cancelled by its caller
                d.callback(reason)
