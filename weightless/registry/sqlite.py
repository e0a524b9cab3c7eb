"""The embedded store: SQLite, with every query on one dedicated thread off the reactor.

SQLite has no change feed: ``watch`` has nothing to do. In one process, writes reach the
in-memory catalog through the caller at once. With ``--workers``, every worker opens the same
file (WAL mode, a migration lock), and a worker relays its registry writes to the others over
the mesh (``cluster.worker.ClusterLive``)."""

from __future__ import annotations

import fcntl
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from weightless.registry import sql
from weightless.registry.entries import Entry
from weightless.registry.migrations import migrations
from weightless.registry.search import Search, like_pattern
from weightless.registry.store import (
    Blocked,
    Conflict,
    IRegistryListener,
    IStore,
    NotOwner,
    Rejected,
    Snapshot,
    StoreUnavailable,
    Unsigned,
)
from weightless.registry.usage import fold_deltas
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.catalog import CatalogEntry

T = TypeVar("T")


def _fold(text: str | None) -> str | None:
    return None if text is None else text.lower()


def _contains(column: str, text: str) -> tuple[str, list[Any]]:
    """SQLite's LIKE folds ASCII only: other text is folded by Python, which is slower."""
    if text.isascii():
        return f"{column} LIKE ? ESCAPE '\\'", [like_pattern(text)]
    return f"instr(wl_fold({column}), ?) > 0", [text.lower()]


@implementer(IStore)
class SQLiteStore:
    def __init__(
        self,
        path: str,
        reactor: IReactorThreads,
        clock: Callable[[], float] = time.time,
        usage_sync: bool = False,
    ):
        self.path = path
        self.usage_sync = usage_sync
        self.reactor = reactor
        self.clock = clock
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name="weightless-sqlite")
        self._conn: sqlite3.Connection | None = None

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> Deferred[T]:
        def work() -> T:
            try:
                if self._conn is None:
                    self._conn = self._connect()
                return fn(self._conn)
            except Rejected:
                raise
            except sqlite3.IntegrityError as e:
                raise Conflict(str(e)) from e
            except sqlite3.DatabaseError as e:  # locked, unreadable, disk full, ...
                raise StoreUnavailable(str(e)) from e

        return deferToThreadPool(self.reactor, self._pool, work)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.create_function("wl_fold", 1, _fold, deterministic=True)
        except BaseException:
            conn.close()
            raise
        return conn

    def open(self) -> Deferred[None]:
        self._pool.start()
        return self._run(self._migrate)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # several worker processes may open a new file at once: one migrates, the others wait
        with open(f"{self.path}.migrate-lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._migrate_locked(conn)

    def _migrate_locked(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, text in migrations("sqlite"):
            if version not in done:
                conn.executescript(
                    f"BEGIN;\n{text}\nINSERT INTO schema_migrations VALUES ({version:d}, "
                    f"{self.clock()!r});\nCOMMIT;"
                )

    def close(self) -> Deferred[None]:
        def shut(conn: sqlite3.Connection) -> None:
            conn.close()
            self._conn = None

        return Deferred.fromCoroutine(self._close(shut))

    async def _close(self, shut: Callable[[sqlite3.Connection], None]) -> None:
        try:
            await self._run(shut)
        finally:
            self._pool.stop()

    def ping(self) -> Deferred[None]:
        return self._run(lambda conn: conn.execute("SELECT 1").fetchone() and None)

    def snapshot(self) -> Deferred[Snapshot]:
        def read(conn: sqlite3.Connection) -> Snapshot:
            entries = [
                CatalogEntry(info_hash, v1, completions)
                for info_hash, v1, completions in conn.execute(
                    "SELECT info_hash, v1_info_hash, completions FROM registry"
                )
            ]
            blocked = [row[0] for row in conn.execute("SELECT info_hash FROM blocklist")]
            return Snapshot(entries, blocked)

        return self._run(read)

    def flush(self, pending: PendingWrites) -> Deferred[None]:
        now = self.clock()

        def write(conn: sqlite3.Connection) -> None:
            try:
                with _transaction(conn):
                    conn.executemany(
                        "UPDATE registry SET completions = "
                        f"{sql.saturating_sum('completions', '?1')} WHERE info_hash = ?2",
                        [(n, info_hash) for info_hash, n in pending.completions.items()],
                    )
                    conn.executemany(
                        "INSERT INTO users (user_id, uploaded, downloaded, updated_at) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                        f"uploaded = {sql.saturating_sum('uploaded', 'excluded.uploaded')}, "
                        f"downloaded = {sql.saturating_sum('downloaded', 'excluded.downloaded')}, "
                        "updated_at = excluded.updated_at",
                        [(user, up, down, now) for user, (up, down) in pending.traffic.items()],
                    )
                    if self.usage_sync:
                        conn.executemany(
                            "INSERT INTO usage_deltas (user_id, uploaded, downloaded) "
                            "VALUES (?, ?, ?)",
                            [(user, up, down) for user, (up, down) in pending.traffic.items()],
                        )
            except (OverflowError, TypeError, ValueError, sqlite3.IntegrityError) as e:
                # a value the binding or a constraint refuses: the batch can never be written
                raise Rejected(str(e)) from e

        return self._run(write)

    def upsert(
        self,
        entry: Entry,
        torrent_data: bytes | None = None,
        meta: str | None = None,
        owner: str | None = None,
        signed_namespaces: bool = False,
    ) -> Deferred[int]:
        params = sql.upsert_params(entry, torrent_data, meta, self.clock(), owner)

        def write(conn: sqlite3.Connection) -> int:
            with _transaction(conn):
                if signed_namespaces:
                    unsigned = conn.execute(
                        sql.UNSIGNED_SQL.format(m="?"), sql.unsigned_params(entry)
                    ).fetchone()
                    if unsigned is not None:
                        raise Unsigned(unsigned[0])
                taken = sql.TAKEN_SQL.format(m="?")
                if conn.execute(taken, sql.taken_params(entry)).fetchone():
                    raise Conflict(entry.info_hash)
                row = conn.execute(sql.upsert_sql("?"), params).fetchone()
                if row is None:
                    blocked = sql.BLOCKED_SQL.format(m="?")
                    if conn.execute(blocked, sql.blocked_params(entry)).fetchone():
                        raise Blocked(entry.info_hash)
                    raise NotOwner(entry.info_hash)
                entry.v1_info_hash = row[1]  # the stored one, when the upsert gave none
                entry.created_at = float(row[2])  # the first registration's
                conn.execute(sql.reverify_sql("?", "info_hash = {mark}"), (entry.info_hash,))
            return int(row[0])

        return self._run(write)

    def takedown(
        self, info_hash: str, reason: str, owner: str | None = None
    ) -> Deferred[list[str]]:
        now = self.clock()

        def write(conn: sqlite3.Connection) -> list[str]:
            with _transaction(conn):
                row = conn.execute(
                    "SELECT info_hash, v1_info_hash, publisher FROM registry "
                    "WHERE info_hash = ? OR v1_info_hash = ?",
                    (info_hash, info_hash),
                ).fetchone()
                if owner is not None and (row is None or row[2] != owner):
                    raise NotOwner(info_hash)
                hashes = [info_hash]
                if row is not None:
                    conn.execute("DELETE FROM registry WHERE info_hash = ?", (row[0],))
                    hashes = list(dict.fromkeys([h for h in row[:2] if h] + hashes))
                conn.executemany(
                    "INSERT INTO blocklist (info_hash, reason, blocked_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (info_hash) DO UPDATE SET reason = excluded.reason",
                    [(h, reason, now) for h in hashes],
                )
            return hashes

        return self._run(write)

    def entry(self, info_hash: str) -> Deferred[Entry | None]:
        def read(conn: sqlite3.Connection) -> Entry | None:
            row = conn.execute(
                f"SELECT {sql.SELECT_ENTRY} FROM registry WHERE info_hash = ? "
                f"UNION ALL SELECT {sql.SELECT_ENTRY} FROM registry WHERE v1_info_hash = ?",
                (info_hash, info_hash),
            ).fetchone()
            return None if row is None else sql.entry_from_row(row)

        return self._run(read)

    def torrent(self, info_hash: str) -> Deferred[tuple[str, bytes] | None]:
        def read(conn: sqlite3.Connection) -> tuple[str, bytes] | None:
            row = conn.execute(
                "SELECT name, torrent_data FROM registry WHERE info_hash = ? "
                "UNION ALL SELECT name, torrent_data FROM registry WHERE v1_info_hash = ?",
                (info_hash, info_hash),
            ).fetchone()
            if row is None or row[1] is None:
                return None
            return row[0], bytes(row[1])

        return self._run(read)

    def meta(self, info_hash: str) -> Deferred[tuple[str | None, bytes | None] | None]:
        def read(conn: sqlite3.Connection) -> tuple[str | None, bytes | None] | None:
            row = conn.execute(sql.META_SQL.format(m="?1"), (info_hash,)).fetchone()
            if row is None:
                return None
            return row[0], None if row[1] is None else bytes(row[1])

        return self._run(read)

    def save_meta(self, info_hash: str, meta: str) -> Deferred[None]:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(sql.SAVE_META_SQL.format(meta="?1", h="?2"), (meta, info_hash))

        return self._run(write)

    def card(self, info_hash: str) -> Deferred[str | None]:
        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(sql.CARD_SQL.format(m="?1"), (info_hash,)).fetchone()
            return None if row is None else row[0]

        return self._run(read)

    def set_card(
        self, info_hash: str, text: str, owner: str | None = None, signed_namespaces: bool = False
    ) -> Deferred[bool]:
        def write(conn: sqlite3.Connection) -> bool:
            with _transaction(conn):
                row = conn.execute(sql.CARD_OWNER_SQL.format(m="?1"), (info_hash,)).fetchone()
                if row is None:
                    return False
                key, publisher = row
                if owner is not None and publisher != owner:
                    raise NotOwner(info_hash)
                has_keys = sql.HAS_KEYS_SQL.format(m="?")
                if (
                    signed_namespaces
                    and publisher is not None
                    and conn.execute(has_keys, (publisher,)).fetchone()
                ):
                    raise Unsigned(publisher)
                conn.execute(sql.SET_CARD_SQL.format(card="?1", h="?2"), (text, key))
            return True

        return self._run(write)

    def card_view(self, info_hash: str, renderer: str) -> Deferred[tuple[str, str | None] | None]:
        def read(conn: sqlite3.Connection) -> tuple[str, str | None] | None:
            query = sql.CARD_VIEW_SQL.format(m="?1", r="?2")
            row = conn.execute(query, (info_hash, renderer)).fetchone()
            return None if row is None else (row[0], row[1])

        return self._run(read)

    def save_card_html(self, info_hash: str, card: str, renderer: str, html: str) -> Deferred[None]:
        def write(conn: sqlite3.Connection) -> None:
            query = sql.SAVE_CARD_HTML_SQL.format(html="?1", r="?2", h="?3", card="?4")
            conn.execute(query, (html, renderer, info_hash, card))

        return self._run(write)

    def search(self, query: Search) -> Deferred[tuple[list[Entry], int]]:
        page, count, params = sql.search_sql(query, "?", _contains)

        def read(conn: sqlite3.Connection) -> tuple[list[Entry], int]:
            rows = conn.execute(page, [*params, query.limit, query.offset]).fetchall()
            total = conn.execute(count, params).fetchone()[0]
            return [sql.entry_from_row(r) for r in rows], int(total)

        return self._run(read)

    def save_counts(self, counts: dict[str, tuple[int, int]], reset: bool) -> Deferred[None]:
        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                if reset:
                    conn.execute(
                        "UPDATE registry SET seeders = 0, leechers = 0 "
                        "WHERE seeders <> 0 OR leechers <> 0"
                    )
                conn.executemany(
                    "UPDATE registry SET seeders = ?, leechers = ? WHERE info_hash = ?",
                    [(s, n, h) for h, (s, n) in counts.items()],
                )

        return self._run(write)

    def trusted_keys(self, publisher: str) -> Deferred[list[str]]:
        def read(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT public_key FROM publisher_keys WHERE publisher = ? ORDER BY public_key",
                (publisher,),
            )
            return [row[0] for row in rows]

        return self._run(read)

    def set_trusted_keys(self, publisher: str, keys: list[str]) -> Deferred[None]:
        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.execute("DELETE FROM publisher_keys WHERE publisher = ?", (publisher,))
                conn.executemany(
                    "INSERT INTO publisher_keys (publisher, public_key) VALUES (?, ?)",
                    [(publisher, key) for key in keys],
                )
                conn.execute(sql.reverify_sql("?", "publisher = {mark}"), (publisher,))

        return self._run(write)

    def set_operator_mark(self, info_hash: str, verified: bool) -> Deferred[Entry | None]:
        def write(conn: sqlite3.Connection) -> Entry | None:
            which = "info_hash = {mark} OR v1_info_hash = {mark}"
            with _transaction(conn):
                conn.execute(
                    "UPDATE registry SET operator_verified = ? WHERE " + which.format(mark="?"),
                    (verified, info_hash, info_hash),
                )
                conn.execute(sql.reverify_sql("?", which), (info_hash, info_hash))
                row = conn.execute(
                    f"SELECT {sql.SELECT_ENTRY} FROM registry WHERE " + which.format(mark="?"),
                    (info_hash, info_hash),
                ).fetchone()
            return None if row is None else sql.entry_from_row(row)

        return self._run(write)

    def user(self, user_id: str) -> Deferred[tuple[int, int] | None]:
        def read(conn: sqlite3.Connection) -> tuple[int, int] | None:
            row = conn.execute(
                "SELECT uploaded, downloaded FROM users WHERE user_id = ?", (user_id,)
            ).fetchone()
            return None if row is None else (row[0], row[1])

        return self._run(read)

    def usage_tick(self, sync_id: str, sender: str, lease: float) -> Deferred[bool]:
        now = self.clock()

        def write(conn: sqlite3.Connection) -> bool:
            with _transaction(conn):
                rows = conn.execute(
                    "SELECT id, user_id, uploaded, downloaded FROM usage_deltas ORDER BY id"
                ).fetchall()
                if rows:
                    conn.execute(
                        "INSERT INTO usage_batches (sync_id, deltas, created_at) VALUES (?, ?, ?)",
                        (sync_id, fold_deltas(r[1:] for r in rows), now),
                    )
                    conn.execute("DELETE FROM usage_deltas WHERE id <= ?", (rows[-1][0],))
                row = conn.execute(
                    "INSERT INTO usage_sender (id, holder, until) VALUES (1, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, "
                    "until = excluded.until WHERE usage_sender.holder = excluded.holder "
                    "OR usage_sender.until < ? RETURNING holder",
                    (sender, now + lease, now),
                ).fetchone()
            return row is not None

        return self._run(write)

    def usage_release(self, sender: str) -> Deferred[None]:
        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.execute("DELETE FROM usage_sender WHERE holder = ?", (sender,))

        return self._run(write)

    def usage_waiting(self, limit: int) -> Deferred[list[tuple[int, str, str]]]:
        def read(conn: sqlite3.Connection) -> list[tuple[int, str, str]]:
            rows = conn.execute(
                "SELECT id, sync_id, deltas FROM usage_batches WHERE set_aside IS NULL "
                "ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
            return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

        return self._run(read)

    def usage_done(self, batch: int, status: int | None) -> Deferred[None]:
        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                if status is None:
                    conn.execute("DELETE FROM usage_batches WHERE id = ?", (batch,))
                else:
                    conn.execute(
                        "UPDATE usage_batches SET set_aside = ? WHERE id = ?", (status, batch)
                    )

        return self._run(write)

    def watch(self, listener: IRegistryListener) -> None:
        """Nothing to do: SQLite tells no one; other workers' writes come over the mesh."""


class _transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *rest: object) -> None:
        self.conn.execute("ROLLBACK" if kind is not None else "COMMIT")
