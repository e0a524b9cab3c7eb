"""/health on a real SQLite database: the ping runs on the store's thread and the answer is
"OK" once it comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
from helpers import build_stack
from treq.testing import StubTreq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from weightless.registry.sqlite import SQLiteStore

BASE = b"http://tracker.example"


def capture(d: Deferred[Any]) -> list[Any]:
    """A list that will hold the result of ``d`` (a Failure is raised by ``settled``)."""
    results: list[Any] = []
    d.addBoth(results.append)
    return results


def settled(d: Deferred[Any] | list[Any]) -> Any:
    results = capture(d) if isinstance(d, Deferred) else d
    assert results, "no answer yet"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


@pytest_twisted.ensureDeferred
async def test_health_with_a_real_sqlite_store(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "health.db"), reactor)
    await store.open()
    try:
        client = StubTreq(build_stack(store, reactor).web.resource())
        answer = capture(client.get(BASE + b"/health"))
        for _ in range(500):
            if answer:
                break
            await deferLater(reactor, 0.01, lambda: None)
            client.flush()
        response = settled(answer)
    finally:
        await store.close()
    assert response.code == 200
    assert settled(client.content(response)) == b"OK"
