"""The maintenance flush on a real SQLite database: completions and user traffic queued in
memory are written in one batch, and what is queued after it by the final flush of a clean
stop."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest_twisted
from twisted.internet import reactor

from weightless.registry.entries import Entry
from weightless.registry.sqlite import SQLiteStore
from weightless.service import Maintenance
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.swarm import SwarmStore

V2 = "ab" * 32


@pytest_twisted.ensureDeferred
async def test_flush_writes_completions_and_traffic_in_one_batch(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "w.db"), reactor)
    await store.open()
    await store.upsert(Entry(V2, "n"))
    pending = PendingWrites()
    maintenance = Maintenance(store, pending, SwarmStore(random.random), None, 3600, reactor)
    pending.complete(V2)
    pending.complete(V2)
    pending.transfer("alice", 10, 20)
    await maintenance.flush()
    pending.transfer("alice", 1, 2)
    await maintenance.stop()  # the final flush on a clean stop
    assert not pending
    await store.close()
    db = sqlite3.connect(tmp_path / "w.db")
    assert db.execute("SELECT completions FROM registry").fetchone() == (2,)
    assert db.execute("SELECT uploaded, downloaded FROM users").fetchone() == (11, 22)
