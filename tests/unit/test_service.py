"""Maintenance (weightless.service) with a store and a clock in memory: queued writes are flushed
every few seconds and kept when the database is down, and expiry runs in slices on the reactor,
one pass at a time (the flush on a real SQLite database: tests/store/test_maintenance_flush.py)."""

import random
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

from weightless.registry.store import StoreUnavailable
from weightless.service import Maintenance
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.swarm import SwarmStore

V2 = "ab" * 32


class FlakyStore:
    def __init__(self) -> None:
        self.down = True
        self.flushed: list[PendingWrites] = []

    def flush(self, pending: PendingWrites) -> Deferred[None]:
        if self.down:
            return fail(StoreUnavailable("gone"))
        self.flushed.append(pending)
        return succeed(None)


def test_a_failed_flush_keeps_the_batch_for_the_next_try() -> None:
    store = FlakyStore()
    pending = PendingWrites()
    clock = Clock()
    maintenance = Maintenance(store, pending, SwarmStore(random.random), None, 3600, clock)  # type: ignore[arg-type]
    pending.complete(V2)
    maintenance.flush()
    pending.complete(V2)  # arrives while the database is down
    assert pending.completions == {V2: 2}
    store.down = False
    maintenance.flush()
    assert not pending
    assert store.flushed[0].completions == {V2: 2}


def test_flush_runs_every_few_seconds() -> None:
    store = FlakyStore()
    store.down = False
    pending = PendingWrites()
    clock = Clock()
    maintenance = Maintenance(store, pending, SwarmStore(random.random), None, 3600, clock)  # type: ignore[arg-type]
    maintenance.start()
    pending.complete(V2)
    clock.advance(5)
    assert store.flushed and not pending
    maintenance.stop()


def test_expiry_runs_in_slices_on_the_reactor() -> None:
    clock = Clock()
    swarms = SwarmStore(random.Random(1).random)
    for i in range(100_000):
        swarms.put(bytes([i % 50]) * 20, i.to_bytes(4, "big") + b"\x1a\xe1", b"p" * 20, False, 0)
    ticks = iter(range(10**9))
    maintenance = Maintenance(
        FlakyStore(),  # type: ignore[arg-type]
        PendingWrites(),
        swarms,
        None,
        100,
        clock,
        timer=lambda: next(ticks) / 1000,  # every look at the time: one more millisecond
    )
    clock.advance(200)
    maintenance.sweep()
    assert 0 < swarms.peer_count < 100_000  # one slice ran, the rest waits for the reactor
    assert len(clock.getDelayedCalls()) == 1  # the next slice, on the next reactor turn
    clock.advance(0)
    assert swarms.peer_count == 0 and not swarms.swarms


def test_fast_sweep_passes_do_not_overlap() -> None:
    calls: list[Any] = []
    clock = Clock()
    swarms = SwarmStore(random.random)
    for i in range(30_000):
        swarms.put(b"k" * 20, i.to_bytes(4, "big") + b"\x1a\xe1", b"p" * 20, False, 0)
    maintenance = Maintenance(FlakyStore(), PendingWrites(), swarms, None, 100, clock)  # type: ignore[arg-type]
    clock.advance(200)
    maintenance.sweep()
    calls.append(len(clock.getDelayedCalls()))
    maintenance.sweep()  # a second start while a pass runs does nothing
    calls.append(len(clock.getDelayedCalls()))
    assert calls == [1, 1]
