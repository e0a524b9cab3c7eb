"""A check that fails a test when a Deferred error went unhandled (pytest, unlike trial, would
otherwise let it pass silently).

Twisted logs "Unhandled error in Deferred" when a Deferred holding a failure is garbage
collected, so the check runs the collector after the test. A full collection walks every object
the session holds (libtorrent, hypothesis, twisted...), about 0.2 s a test; instead, what
survives a collection is frozen (``gc.freeze``), so the next collection walks only what the next
test made. Every ``FULL_EVERY`` checks the frozen objects are thawed and collected as well, so
that garbage among them is not kept for the whole session.
"""

from __future__ import annotations

import gc
from types import TracebackType
from typing import Any

import pytest
from twisted.logger import globalLogPublisher

FULL_EVERY = 200
_checks = 0


def collect() -> None:
    """Collect the garbage made since the last collection (all of it every FULL_EVERY calls),
    then freeze what survives."""
    global _checks
    _checks += 1
    if _checks % FULL_EVERY == 0:
        gc.unfreeze()
    gc.collect()
    gc.freeze()


class UnhandledDeferredErrors:
    """``with UnhandledDeferredErrors():`` around a test: on the way out, the garbage collector
    runs and any Deferred error that went unhandled fails the test with its traceback. Checks
    nest: the innermost one takes the errors."""

    active: list[UnhandledDeferredErrors] = []

    def __init__(self) -> None:
        self.errors: list[str] = []

    def observe(self, event: dict[str, Any]) -> None:
        # Twisted logs it as two events: "Unhandled error in Deferred:", then the failure
        if self.active[-1] is not self:
            return
        text = str(event.get("log_format", ""))
        failure = event.get("log_failure")
        if "Unhandled error in Deferred" in text:
            self.errors.append(text)
        elif not self.errors or event.get("log_namespace") != "twisted.internet.defer":
            return
        if failure is not None:
            self.errors.append(failure.getTraceback())

    def __enter__(self) -> UnhandledDeferredErrors:
        self.active.append(self)
        globalLogPublisher.addObserver(self.observe)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            collect()
        finally:
            globalLogPublisher.removeObserver(self.observe)
            self.active.remove(self)
        if self.errors:
            pytest.fail("unhandled error in a Deferred:\n" + "\n".join(self.errors))
