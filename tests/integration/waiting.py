"""Waiting in integration tests, written once: poll a condition until it holds. The timeouts
are generous because they only bound a failure: a pass waits as long as the condition takes
and no longer, however busy the machine is."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL = 0.05  # seconds between two looks at the condition
TIMEOUT = 60.0  # the default bound on one wait


def eventually(
    fetch: Callable[[], T], ok: Callable[[T], bool], deadline: float, poll: float = POLL
) -> T:
    """Call ``fetch`` until ``ok`` accepts what it returns or ``deadline`` (monotonic) passes;
    returns the last value either way, for the caller to assert on (and show)."""
    while True:
        value = fetch()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(poll)


def wait_for(
    check: Callable[[], bool],
    what: str | Callable[[], str],
    timeout: float = TIMEOUT,
    deadline: float | None = None,
    poll: float = POLL,
) -> None:
    """Poll ``check()`` until it is true; at ``deadline`` (monotonic), or ``timeout`` seconds
    from now, fail naming ``what`` (a callable is asked then, for logs as they are at the
    end)."""
    end = deadline if deadline is not None else time.monotonic() + timeout
    if not eventually(check, bool, end, poll):
        story = what() if callable(what) else what
        raise AssertionError(f"timed out waiting for {story}")
