"""What only the embedded store does: one file shared by every worker (WAL, migrated once under
a lock), and case-insensitive search for text SQLite's own LIKE cannot fold."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest_twisted
from twisted.internet import defer, reactor

from weightless.registry.entries import Entry
from weightless.registry.search import Search
from weightless.registry.sqlite import SQLiteStore

V2 = hashlib.sha256(b"sqlite").hexdigest()
OTHER = hashlib.sha256(b"other").hexdigest()


@pytest_twisted.ensureDeferred
async def test_workers_share_one_file(tmp_path: Path) -> None:
    """Two stores on one file, as two workers open it: both see every write, each migration is
    applied once, and the file is in WAL mode so that readers never wait for a writer."""
    path = str(tmp_path / "registry.db")
    first, second = SQLiteStore(path, reactor), SQLiteStore(path, reactor)
    await first.open()
    await second.open()
    try:
        await first.upsert(Entry(V2, "from the first worker"))
        await second.upsert(Entry(OTHER, "from the second worker"))
        seen = await second.entry(V2)
        assert seen is not None and seen.name == "from the first worker"
        seen = await first.entry(OTHER)
        assert seen is not None and seen.name == "from the second worker"
    finally:
        await defer.gatherResults([first.close(), second.close()])
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == sorted(set(versions)) and versions  # each migration applied once


@pytest_twisted.ensureDeferred
async def test_search_folds_text_beyond_ascii(tmp_path: Path) -> None:
    """SQLite's LIKE folds only ASCII letters: a name with others is still found in any case."""
    store = SQLiteStore(str(tmp_path / "registry.db"), reactor)
    await store.open()
    try:
        await store.upsert(Entry(V2, "Modèle ÉTÉ"))
        await store.upsert(Entry(OTHER, "plain model"))
        for q in ("modèle été", "MODÈLE", "été"):
            found, total = await store.search(Search(q=q))
            assert [e.name for e in found] == ["Modèle ÉTÉ"] and total == 1, q
        found, total = await store.search(Search(q="MODEL"))
        assert [e.name for e in found] == ["plain model"] and total == 1
    finally:
        await store.close()
