"""The SQL both dialects share (weightless.registry.sql), run on an SQLite database in memory
built by the shipped migrations: counters that stop at 2^63-1, the upsert that keeps what it is
not given and writes nothing for a blocked hash, and search's filters, order and pages."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from weightless.registry import sql
from weightless.registry.entries import Entry
from weightless.registry.migrations import migrations
from weightless.registry.search import Search, like_pattern

MAX = (1 << 63) - 1
V2 = [f"{i:064x}" for i in range(1, 6)]
V1 = "ab" * 20


def contains(column: str, text: str) -> tuple[str, list[Any]]:
    return f"{column} LIKE ? ESCAPE '\\'", [like_pattern(text)]


@pytest.fixture
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    for _, text in migrations("sqlite"):
        conn.executescript(text)
    return conn


def upsert(db: sqlite3.Connection, entry: Entry, now: float = 1.0) -> tuple[int, str] | None:
    row = db.execute(sql.upsert_sql("?"), sql.upsert_params(entry, None, None, now)).fetchone()
    return None if row is None else (row[0], row[1])


def search(db: sqlite3.Connection, query: Search) -> tuple[list[str], int]:
    page, count, params = sql.search_sql(query, "?", contains)
    rows = db.execute(page, [*params, query.limit, query.offset]).fetchall()
    total = db.execute(count, params).fetchone()[0]
    return [sql.entry_from_row(r).name for r in rows], total


@pytest.mark.parametrize(
    ("stored", "added", "expected"),
    [(5, 7, 12), (MAX - 1, 1, MAX), (MAX - 1, 2, MAX), (MAX, MAX, MAX), (0, MAX, MAX)],
)
def test_counters_saturate_at_the_64_bit_limit_and_stay_integers(
    db: sqlite3.Connection, stored: int, added: int, expected: int
) -> None:
    db.execute(
        "INSERT INTO users (user_id, uploaded, updated_at) VALUES ('alice', ?, 0)", (stored,)
    )
    db.execute(
        f"UPDATE users SET uploaded = {sql.saturating_sum('uploaded', '?')}", (added, added)
    )  # the added value is used twice
    assert db.execute("SELECT uploaded, typeof(uploaded) FROM users").fetchone() == (
        expected,
        "integer",
    )


def test_an_upsert_keeps_what_it_is_not_given(db: sqlite3.Connection) -> None:
    assert upsert(db, Entry(V2[0], "first", v1_info_hash=V1, description="d")) == (0, V1)
    db.execute("UPDATE registry SET completions = 7")
    # no v1 hash this time: the stored one stays, and so do the completions
    assert upsert(db, Entry(V2[0], "renamed"), now=2.0) == (7, V1)
    row = db.execute("SELECT name, description, v1_info_hash FROM registry").fetchone()
    assert row == ("renamed", None, V1)  # written columns are replaced, even by nothing


@pytest.mark.parametrize("blocked", [V2[0], V1, V2[0][:40]])
def test_an_upsert_of_a_blocked_hash_writes_nothing(db: sqlite3.Connection, blocked: str) -> None:
    db.execute("INSERT INTO blocklist (info_hash, blocked_at) VALUES (?, 0)", (blocked,))
    assert upsert(db, Entry(V2[0], "taken down", v1_info_hash=V1)) is None
    assert db.execute("SELECT count(*) FROM registry").fetchone() == (0,)


def test_an_entry_read_back_is_the_entry_written(db: sqlite3.Connection) -> None:
    entry = Entry(V2[1], "model", v1_info_hash=V1, publisher="acme", size=10, tags="a,b")
    entry.version, entry.created_at = "2.0", 1.0
    upsert(db, entry)
    row = db.execute(f"SELECT {sql.SELECT_ENTRY} FROM registry").fetchone()
    assert sql.entry_from_row(row) == entry


def test_search_filters_orders_and_pages(db: sqlite3.Connection) -> None:
    names = ["llama_7b", "llama-7b", "mistral", "LLAMA 100%", "qwen"]
    for i, name in enumerate(names):
        category = "model" if i < 4 else "dataset"
        upsert(db, Entry(V2[i], name, category=category, tags="nlp" if i % 2 else "vision"), i)
        db.execute("UPDATE registry SET completions = ? WHERE info_hash = ?", (10 - i, V2[i]))
    # newest first by default; the name matches in any case
    assert search(db, Search(q="llama")) == (["LLAMA 100%", "llama-7b", "llama_7b"], 3)
    # LIKE's own characters are taken literally
    assert search(db, Search(q="a_7")) == (["llama_7b"], 1)
    assert search(db, Search(q="100%")) == (["LLAMA 100%"], 1)
    # exact filters and the tags substring combine
    assert search(db, Search(category="model", tags="nlp")) == (["LLAMA 100%", "llama-7b"], 2)
    assert search(db, Search(category="dataset")) == (["qwen"], 1)
    # most completions first, then a page of it
    assert search(db, Search(sort="completions", limit=2)) == (["llama_7b", "llama-7b"], 5)
    assert search(db, Search(sort="completions", limit=2, offset=2)) == (
        ["mistral", "LLAMA 100%"],
        5,
    )
    assert search(db, Search(verified=True)) == ([], 0)
