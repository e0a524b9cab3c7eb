"""The numbered migrations shipped for each dialect: the same versions, in order, each number
once (work on separate branches reserves numbers, so a branch may ship 6 before 5 lands), and
the SQLite ones build the registry's tables when applied in that order."""

from __future__ import annotations

import sqlite3

from weightless.registry.migrations import migrations


def test_both_dialects_ship_the_same_versions_oldest_first() -> None:
    sqlite, postgresql = migrations("sqlite"), migrations("postgresql")
    versions = [v for v, _ in sqlite]
    assert versions == sorted(set(versions)) and versions[:4] == [1, 2, 3, 4]
    assert [v for v, _ in postgresql] == versions
    assert all(text.strip() for _, text in sqlite + postgresql)


def test_the_sqlite_migrations_build_the_registry() -> None:
    conn = sqlite3.connect(":memory:")
    for _, text in migrations("sqlite"):
        conn.executescript(text)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"registry", "blocklist", "users", "publisher_keys", "usage_batches"} <= tables
    columns = {row[1] for row in conn.execute("PRAGMA table_info(registry)")}
    assert {"info_hash", "v1_info_hash", "completions", "meta", "signature"} <= columns
