"""SQL text shared by both dialects: the entry columns, and search's WHERE and ORDER BY.

Values are always bound parameters; only fixed column names and placeholders are put in text."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from weightless.registry.entries import Entry
from weightless.registry.search import Search
from weightless.wire.numbers import INT64_MAX

ENTRY_COLUMNS = (
    "info_hash",
    "v1_info_hash",
    "name",
    "verified",
    "completions",
    "description",
    "publisher",
    "license",
    "size",
    "category",
    "tags",
    "publisher_key",
    "signature",
    "version",
    "created_at",
)
SELECT_ENTRY = ", ".join(ENTRY_COLUMNS)
# written by an upsert (info_hash is the key; v1_info_hash and torrent_data are kept when null)
WRITTEN = ("name", "description", "publisher", "license", "size", "category", "tags", "version")

# An entry is verified when the operator marked it, or when its signature (checked against its
# hashes before it was stored) is by a key trusted for its publisher.
VERIFIED = (
    "operator_verified OR (publisher_key IS NOT NULL AND EXISTS (SELECT 1 FROM publisher_keys k "
    "WHERE k.publisher = registry.publisher AND k.public_key = registry.publisher_key))"
)
# A new signature was checked against info_hash and the v1_info_hash given with it: it is
# stored unless the row keeps another v1_info_hash (a write in between). Without a new one, the
# stored signature stays while the entry's hashes and stored file do; a changed v1_info_hash, or
# a new file without a signature (an unsigned file replacing a signed one), drops it.
_NEW_SIGNATURE = (
    "excluded.signature IS NOT NULL AND "
    "(excluded.v1_info_hash IS NOT NULL OR registry.v1_info_hash IS NULL)"
)
_KEEP_SIGNATURE = (
    "excluded.signature IS NULL AND excluded.torrent_data IS NULL AND "
    "(excluded.v1_info_hash IS NULL OR excluded.v1_info_hash = registry.v1_info_hash)"
)

# every key descending, so that each order is one index read backwards (0002_search.sql)
ORDER_BY = {
    "created_at": "created_at DESC, info_hash DESC",
    "completions": "completions DESC, created_at DESC, info_hash DESC",
    "seeders": "seeders DESC, created_at DESC, info_hash DESC",
}

# (column, text) -> (SQL condition, its parameters): a case-insensitive substring test
Contains = Callable[[str, str], tuple[str, list[Any]]]


def saturating_sum(column: str, added: str) -> str:
    """``column + added``, but 2^63-1 where that would overflow a 64-bit integer (PostgreSQL
    refuses the overflow, SQLite turns it into a float). Both sides are non-negative."""
    return (
        f"CASE WHEN {column} > {INT64_MAX} - {added} THEN {INT64_MAX} ELSE {column} + {added} END"
    )


def entry_from_row(row: Sequence[Any]) -> Entry:
    values = dict(zip(ENTRY_COLUMNS, row, strict=True))
    values["verified"] = bool(values["verified"])
    values["created_at"] = float(values["created_at"])
    return Entry(**values)


def upsert_sql(mark: str) -> str:
    """INSERT ... ON CONFLICT (info_hash) DO UPDATE: the columns of WRITTEN replaced, verified
    and completions kept, the stored .torrent (with its /meta view) and v1_info_hash kept when
    none is given. Nothing
    is written (no row returned) when a hash of the entry is blocked: the in-memory check before
    it can race a takedown made meanwhile, here or on another machine; nor when an ``owner`` is
    given (`upsert_params`) and the stored row is of another publisher."""
    columns = (
        "info_hash",
        "v1_info_hash",
        *WRITTEN,
        "publisher_key",
        "signature",
        "torrent_data",
        "meta",
        "created_at",
        "updated_at",
    )
    updates = ", ".join(f"{c} = excluded.{c}" for c in WRITTEN)
    signed = ", ".join(
        f"{c} = CASE WHEN {_NEW_SIGNATURE} THEN excluded.{c} WHEN {_KEEP_SIGNATURE} THEN "
        f"registry.{c} END"
        for c in ("publisher_key", "signature")
    )
    return (
        f"INSERT INTO registry ({', '.join(columns)}) SELECT {', '.join([mark] * len(columns))} "
        f"WHERE NOT EXISTS (SELECT 1 FROM blocklist WHERE info_hash IN ({mark}, {mark}, {mark})) "
        "ON CONFLICT (info_hash) DO UPDATE SET "
        "v1_info_hash = COALESCE(excluded.v1_info_hash, registry.v1_info_hash), "
        "torrent_data = COALESCE(excluded.torrent_data, registry.torrent_data), "
        # the /meta view goes with the file: replaced with it, kept without one
        "meta = CASE WHEN excluded.torrent_data IS NULL THEN registry.meta "
        "ELSE excluded.meta END, "
        f"{updates}, {signed}, updated_at = excluded.updated_at "
        # a publisher's token rewrites only its publisher's rows, checked in the same statement
        f"WHERE {mark} IS NULL OR registry.publisher = {mark} "
        "RETURNING completions, v1_info_hash, created_at"
    )


def reverify_sql(mark: str, where: str) -> str:
    """Recompute ``verified`` of the rows matching ``where`` (after any write that can change
    it: an upsert, new trusted keys, the operator's mark)."""
    return f"UPDATE registry SET verified = ({VERIFIED}) WHERE {where.format(mark=mark)}"


def upsert_params(
    entry: Entry, torrent_data: Any, meta: str | None, now: float, owner: str | None = None
) -> list[Any]:
    return [
        entry.info_hash,
        entry.v1_info_hash,
        *(getattr(entry, c) for c in WRITTEN),
        entry.publisher_key if entry.signature else None,
        entry.signature if entry.publisher_key else None,
        torrent_data,
        meta if torrent_data is not None else None,
        now,
        now,
        # the blocklist check: the hash, its v1 hash, its 40-hex (truncated v2) wire form
        entry.info_hash,
        entry.v1_info_hash,
        entry.info_hash[:40],
        # the owner check of an existing row (None: any row)
        owner,
        owner,
    ]


CARD_SQL = (
    "SELECT card FROM registry WHERE info_hash = {m} "
    "UNION ALL SELECT card FROM registry WHERE v1_info_hash = {m}"
)
# a new card drops the HTML rendered from the one before
SET_CARD_SQL = (
    "UPDATE registry SET card = {card}, card_html = NULL, card_renderer = NULL "
    "WHERE info_hash = {h}"
)
# the key and publisher of the entry with a hash, whose card a write is about to set
CARD_OWNER_SQL = (
    "SELECT info_hash, publisher FROM registry WHERE info_hash = {m} "
    "UNION ALL SELECT info_hash, publisher FROM registry WHERE v1_info_hash = {m}"
)
HAS_KEYS_SQL = "SELECT 1 FROM publisher_keys WHERE publisher = {m} LIMIT 1"
# (card, its HTML when rendered by renderer {r}, else NULL) of the entry with a hash
_CARD_VIEW = "card, CASE WHEN card_renderer = {r} THEN card_html END"
CARD_VIEW_SQL = (
    f"SELECT {_CARD_VIEW} FROM registry WHERE info_hash = {{m}} AND card IS NOT NULL "
    f"UNION ALL SELECT {_CARD_VIEW} FROM registry WHERE v1_info_hash = {{m}} AND card IS NOT NULL"
)
# keeps the HTML only if the card it was rendered from is still the entry's
SAVE_CARD_HTML_SQL = (
    "UPDATE registry SET card_html = {html}, card_renderer = {r} "
    "WHERE (info_hash = {h} OR v1_info_hash = {h}) AND card = {card}"
)

# Signed namespaces: the publishers, of the entry's and of the stored row's, that have trusted
# keys and none of them is the entry's new publisher_key (NULL for an unsigned write): any row
# refuses the write. Run in the upsert's transaction, so a trust change cannot slip in between.
UNSIGNED_SQL = (
    "SELECT k.publisher FROM publisher_keys k WHERE k.publisher IN "
    "({m}, (SELECT publisher FROM registry WHERE info_hash = {m})) GROUP BY k.publisher "
    "HAVING SUM(CASE WHEN k.public_key = {m} THEN 1 ELSE 0 END) = 0 ORDER BY k.publisher"
)


def unsigned_params(entry: Entry) -> tuple[Any, ...]:
    key = entry.publisher_key if entry.signature else None
    return (entry.publisher, entry.info_hash, key)


# another entry holding a hash of this one in the other column: a v1-only entry keyed by a
# hybrid's v1 hash, or a hybrid whose v1 hash keys a v1-only entry (the in-memory catalog
# refuses these first, but another worker or machine may have written one a moment before)
TAKEN_SQL = (
    "SELECT 1 FROM registry WHERE v1_info_hash = {m} AND info_hash <> {m} "
    "UNION ALL SELECT 1 FROM registry WHERE info_hash = {m}"
)


def taken_params(entry: Entry) -> tuple[Any, ...]:
    return (entry.info_hash, entry.info_hash, entry.v1_info_hash)


BLOCKED_SQL = "SELECT 1 FROM blocklist WHERE info_hash IN ({m}, {m}, {m})"


def blocked_params(entry: Entry) -> tuple[Any, ...]:
    """The blocklist check of an upsert: the hash, its v1 hash, its 40-hex (truncated v2) form."""
    return (entry.info_hash, entry.v1_info_hash, entry.info_hash[:40])


# (stored /meta JSON, the file when that is not computed yet) of the entry with a hash
META_SQL = (
    "SELECT meta, CASE WHEN meta IS NULL THEN torrent_data END FROM registry "
    "WHERE torrent_data IS NOT NULL AND (info_hash = {m} OR v1_info_hash = {m})"
)
SAVE_META_SQL = (
    "UPDATE registry SET meta = {meta} WHERE (info_hash = {h} OR v1_info_hash = {h}) "
    "AND meta IS NULL AND torrent_data IS NOT NULL"
)


def where(query: Search, mark: str, contains: Contains) -> tuple[str, list[Any]]:
    """The WHERE clause (empty when nothing filters) and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, text in (("name", query.q), ("tags", query.tags)):
        if text:
            clause, values = contains(column, text)
            clauses.append(clause)
            params += values
    exact = (
        ("category", query.category),
        ("publisher", query.publisher),
        ("name", query.name),
        ("version", query.version),
    )
    for column, value in exact:
        if value:
            clauses.append(f"{column} = {mark}")
            params.append(value)
    if query.verified is not None:
        clauses.append(f"verified = {mark}")
        params.append(query.verified)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def search_sql(query: Search, mark: str, contains: Contains) -> tuple[str, str, list[Any]]:
    """(page query, count query, filter parameters); the page takes limit and offset after."""
    condition, params = where(query, mark, contains)
    page = (
        f"SELECT {SELECT_ENTRY} FROM registry{condition} ORDER BY {ORDER_BY[query.sort]} "
        f"LIMIT {mark} OFFSET {mark}"
    )
    return page, f"SELECT count(*) FROM registry{condition}", params
