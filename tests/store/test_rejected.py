"""A number from a client never reaches the store unbounded, and a row the database refuses
never holds back the others (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import random
from typing import Any

import pytest
import pytest_twisted
from registry_kit import make_store
from twisted.internet import reactor
from twisted.logger import globalLogPublisher

from weightless.metrics import Stats, TrackerCollector, make_registry
from weightless.registry.entries import Entry
from weightless.service import Maintenance
from weightless.tracker.accounting import Accounting, PendingWrites
from weightless.tracker.swarm import SwarmStore

MAX = (1 << 63) - 1
V2 = "ab" * 32
OTHER = "cd" * 32


def maintenance(store: Any, pending: PendingWrites, stats: Stats) -> Maintenance:
    return Maintenance(store, pending, SwarmStore(random.random), None, 3600, reactor, stats=stats)


async def users(store: Any, *names: str) -> dict[str, Any]:
    return {name: await store.user(name) for name in names}


@pytest_twisted.ensureDeferred
async def test_totals_saturate_in_the_database(store_url: str) -> None:
    """2^63-1 and then more: the total stays 2^63-1, an integer (SQLite used to store a float,
    PostgreSQL to refuse the whole batch)."""
    store = make_store(store_url)
    await store.open()
    try:
        await store.upsert(Entry(V2, "n"))
        pending, stats = PendingWrites(), Stats()
        m = maintenance(store, pending, stats)
        for up, down in [(MAX, 5), (1, MAX), (MAX, MAX), (12345, 0)]:
            pending.transfer("alice", up, down)
            pending.transfer("bob", 7, 0)
            await m.flush()
        pending.complete(V2, MAX)
        await m.flush()
        pending.complete(V2)
        await m.flush()
        found = await users(store, "alice", "bob")
        assert found == {"alice": (MAX, MAX), "bob": (28, 0)}
        assert all(type(v) is int for pair in found.values() for v in pair)
        snapshot = await store.snapshot()
        assert [(e.info_hash, e.completions) for e in snapshot.entries] == [(V2, MAX)]
        assert stats.store_rejected == 0
    finally:
        await store.close()


def poisoned(bad_rows: dict[str, list[int]]) -> PendingWrites:
    """A batch with good rows around rows no database can take."""
    batch = PendingWrites()
    batch.complete(V2, 3)
    batch.complete(OTHER, 2)
    for i in range(9):
        batch.traffic[f"user{i}"] = [i + 1, 2 * i]
    batch.traffic.update(bad_rows)
    return batch


BAD_ROWS = [
    {"mallory": [99999999999999999999, 0]},  # 20 digits: beyond any 64-bit integer
    {"mallory": [0, 1 << 64]},
    {"mallory": [MAX + 1, MAX + 1]},
    {"mallory": [10**30, 1], "eve": [1, 10**25]},  # two refused rows in one batch
]


@pytest.mark.parametrize("bad", BAD_ROWS)
@pytest_twisted.ensureDeferred
async def test_a_refused_row_is_set_aside_and_the_rest_written(
    store_url: str, bad: dict[str, list[int]]
) -> None:
    store = make_store(store_url)
    await store.open()
    errors: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_level") is not None and event["log_level"].name == "error":
            errors.append(str(event.get("log_format")))

    globalLogPublisher.addObserver(observe)
    try:
        await store.upsert(Entry(V2, "n"))
        await store.upsert(Entry(OTHER, "o"))
        stats = Stats()
        pending = poisoned(bad)
        m = maintenance(store, pending, stats)
        await m.flush()  # one flush: everything but the refused rows is written
        assert not pending  # nothing kept to poison the next flush (or the pending file)
        written = await users(store, *(f"user{i}" for i in range(9)), *bad)
        assert written == {
            **{f"user{i}": (i + 1, 2 * i) for i in range(9)},
            **dict.fromkeys(bad),
        }
        snapshot = await store.snapshot()
        assert {e.info_hash: e.completions for e in snapshot.entries} == {V2: 3, OTHER: 2}
        assert stats.store_rejected == len(bad)
        assert len(errors) == len(bad)
        metrics = make_registry(TrackerCollector(stats, lambda: 0, lambda: 0, lambda: 0))
        assert metrics.get_sample_value("tracker_store_rejected_total") == len(bad)
        # later writes are not held back either
        pending.transfer("user0", 1, 1)
        await m.flush()
        assert await store.user("user0") == (2, 1)
    finally:
        globalLogPublisher.removeObserver(observe)
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_nul_in_a_kept_user_id_is_set_aside_on_postgresql(postgres_dsn: str) -> None:
    """PostgreSQL text cannot hold NUL (a damaged pending file could): only that row goes."""
    store = make_store(postgres_dsn)
    await store.open()
    try:
        stats = Stats()
        pending = PendingWrites()
        pending.transfer("bad\x00user", 1, 1)
        pending.transfer("good", 5, 6)
        await maintenance(store, pending, stats).flush()
        assert await store.user("good") == (5, 6)
        assert stats.store_rejected == 1
    finally:
        await store.close()


def test_pending_totals_saturate_in_memory() -> None:
    pending = PendingWrites()
    pending.transfer("alice", MAX, 1)
    pending.transfer("alice", MAX, MAX)
    pending.complete(V2, MAX)
    pending.complete(V2)
    assert pending.traffic == {"alice": [MAX, MAX]}
    assert pending.completions == {V2: MAX}
    again = PendingWrites()
    again.restore(pending)
    again.restore(pending)
    assert again.traffic == {"alice": [MAX, MAX]} and again.completions == {V2: MAX}


def test_accounting_of_a_restarted_client_at_the_limit_stays_an_integer() -> None:
    """A client at 2^63-1, then a smaller total (a restart): the account stays at the limit, an
    integer, never past it."""
    pending = PendingWrites()
    accounting = Accounting(pending, 3600)
    swarm, addr = b"s" * 20, b"a" * 6
    accounting.announce("alice", swarm, addr, MAX, 0, True, False, 1.0)
    accounting.announce("alice", swarm, addr, 10, 0, False, False, 2.0)
    assert pending.traffic == {"alice": [MAX, 0]}
    assert type(pending.traffic["alice"][0]) is int


def test_halves_keep_every_row_once() -> None:
    batch = poisoned({"x": [1, 2]})
    first, second = batch.halves()
    assert abs(len(first) - len(second)) <= 1
    merged = PendingWrites()
    merged.restore(first)
    merged.restore(second)
    assert merged.completions == batch.completions and merged.traffic == batch.traffic
