"""The embedded store: SQLite, with every query on one dedicated thread off the reactor."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from weightless.registry.migrations import migrations
from weightless.registry.store import IStore, Snapshot, StoreUnavailable
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.catalog import CatalogEntry

T = TypeVar("T")

ENTRY_FIELDS = (
    "v1_info_hash",
    "name",
    "description",
    "publisher",
    "license",
    "size",
    "category",
    "tags",
)


@implementer(IStore)
class SQLiteStore:
    def __init__(self, path: str, reactor: IReactorThreads, clock: Callable[[], float] = time.time):
        self.path = path
        self.reactor = reactor
        self.clock = clock
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name="weightless-sqlite")
        self._conn: sqlite3.Connection | None = None

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> Deferred[T]:
        def work() -> T:
            if self._conn is None:
                self._conn = self._connect()
            try:
                return fn(self._conn)
            except sqlite3.OperationalError as e:
                raise StoreUnavailable(str(e)) from e

        return deferToThreadPool(self.reactor, self._pool, work)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def open(self) -> Deferred[None]:
        self._pool.start()
        return self._run(self._migrate)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, sql in migrations("sqlite"):
            if version not in done:
                conn.executescript(
                    f"BEGIN;\n{sql}\nINSERT INTO schema_migrations VALUES ({version:d}, "
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
            with _transaction(conn):
                conn.executemany(
                    "UPDATE registry SET completions = completions + ? WHERE info_hash = ?",
                    [(n, info_hash) for info_hash, n in pending.completions.items()],
                )
                conn.executemany(
                    "INSERT INTO users (user_id, uploaded, downloaded, updated_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                    "uploaded = uploaded + excluded.uploaded, "
                    "downloaded = downloaded + excluded.downloaded, "
                    "updated_at = excluded.updated_at",
                    [(user, up, down, now) for user, (up, down) in pending.traffic.items()],
                )

        return self._run(write)

    def upsert(self, entry: dict[str, Any]) -> Deferred[None]:
        now = self.clock()
        values = [entry["info_hash"]] + [entry.get(f) for f in ENTRY_FIELDS]
        updates = ", ".join(f"{f} = excluded.{f}" for f in ENTRY_FIELDS)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO registry (info_hash, {', '.join(ENTRY_FIELDS)}, created_at, "
                f"updated_at) VALUES ({', '.join('?' * (len(ENTRY_FIELDS) + 3))}) "
                f"ON CONFLICT (info_hash) DO UPDATE SET {updates}, "
                "updated_at = excluded.updated_at",
                [*values, now, now],
            )

        return self._run(write)

    def block(self, hashes: list[str], reason: str) -> Deferred[None]:
        now = self.clock()

        def write(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                for h in hashes:
                    conn.execute(
                        "DELETE FROM registry WHERE info_hash = ? OR v1_info_hash = ?", (h, h)
                    )
                    conn.execute(
                        "INSERT INTO blocklist (info_hash, reason, blocked_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (info_hash) DO UPDATE SET reason = excluded.reason",
                        (h, reason, now),
                    )

        return self._run(write)

    def user(self, user_id: str) -> Deferred[tuple[int, int] | None]:
        def read(conn: sqlite3.Connection) -> tuple[int, int] | None:
            row = conn.execute(
                "SELECT uploaded, downloaded FROM users WHERE user_id = ?", (user_id,)
            ).fetchone()
            return None if row is None else (row[0], row[1])

        return self._run(read)


class _transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *rest: object) -> None:
        self.conn.execute("ROLLBACK" if kind is not None else "COMMIT")
