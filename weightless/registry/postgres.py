"""The production store: PostgreSQL through txpostgres, for many processes and machines.

Every connection has a `DeadConnectionDetector`, so a PostgreSQL restart or a network cut costs
the queries in flight (answered as StoreUnavailable) and nothing after it: the connection comes
back on its own. Writes send NOTIFY in their transaction; `watch` LISTENs on a connection of its
own and, after every (re)connection, reloads the whole state, since notifications sent while it
was away are lost."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import psycopg2
import psycopg2.errors
from psycopg2.extensions import parse_dsn
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.interfaces import IReactorCore
from twisted.logger import Logger
from twisted.python.failure import Failure
from txpostgres.reconnection import ConnectionDead, DeadConnectionDetector
from txpostgres.txpostgres import Connection, Cursor, RollbackFailed
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
POOL_SIZE = 4
# libpq settings that make a dead server or a cut network fail a query in seconds, not hours;
# the DSN's own values win
CONNECT_DEFAULTS = {
    "application_name": "weightless",
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "2",
    "tcp_user_timeout": "10000",
}
DEAD = (psycopg2.OperationalError, psycopg2.InterfaceError, ConnectionDead, RollbackFailed)


def reconnect_delays() -> Iterator[float]:
    """At once, then 0.5 s growing to 5 s between tries, for as long as it takes."""
    yield 0.0
    delay = 0.5
    while True:
        yield delay
        delay = min(delay * 1.7, 5.0)


def _contains(column: str, text: str) -> tuple[str, list[Any]]:
    return f"{column} ILIKE %s", [like_pattern(text)]


def _unavailable(failure: Failure) -> Failure:
    """Database errors as the store's exceptions; anything else as it is."""
    if failure.check(psycopg2.IntegrityError):
        return Failure(Conflict(failure.getErrorMessage()))
    if failure.check(*DEAD):
        return Failure(StoreUnavailable(failure.getErrorMessage() or "database connection lost"))
    return failure


class _Detector(DeadConnectionDetector):
    """A detector that can be stopped: after close() nothing reconnects."""

    log = Logger()

    def __init__(self, delays: Callable[[], Iterator[float]], reactor: IReactorCore) -> None:
        self.stopped = False
        self._retrying: Deferred[Any] | None = None
        super().__init__(reconnectionIterator=self._delays(delays), reactor=reactor)

    def _delays(self, delays: Callable[[], Iterator[float]]) -> Callable[[], Iterator[float]]:
        def run() -> Iterator[float]:
            for delay in delays():
                if self.stopped:
                    return
                yield delay

        return run

    def startReconnecting(self, f: Failure) -> None:
        if self.stopped:
            return
        self.log.warn("database connection lost, reconnecting: {e}", e=f.getErrorMessage())
        super().startReconnecting(f)

    def reconnect(self) -> Deferred[Any]:
        if self.stopped:
            return fail(StoreUnavailable("store closed"))
        d: Deferred[Any] = super().reconnect()

        def closed_meanwhile(result: object) -> object:
            if self.stopped:
                self.reconnectable.close()
                raise StoreUnavailable("store closed")
            return result

        return d.addCallback(closed_meanwhile)

    def connectionRecovered(self) -> Any:
        if self.stopped:
            return None
        self.log.info("database connection recovered")
        return super().connectionRecovered()

    def stop(self) -> None:
        self.stopped = True


class _Connection(Connection):
    """A connection whose death, noticed while idle, is a lost connection (and a reconnection
    by its detector), not an unhandled error logged with a traceback by the reactor."""

    def doRead(self) -> Exception | None:
        try:
            Connection.doRead(self)
        except psycopg2.Error as e:
            return e
        return None

    def doWrite(self) -> Exception | None:
        try:
            Connection.doWrite(self)
        except psycopg2.Error as e:
            return e
        return None


@implementer(IStore)
class PostgresStore:
    log = Logger()

    def __init__(
        self,
        dsn: str,
        reactor: IReactorCore,
        clock: Callable[[], float] = time.time,
        pool_size: int = POOL_SIZE,
        delays: Callable[[], Iterator[float]] = reconnect_delays,
        usage_sync: bool = False,
    ) -> None:
        """``usage_sync``: flushes also keep each user's traffic for the hub (usage_batch)."""
        self.reactor = reactor
        self.usage_sync = usage_sync
        self.clock = clock
        self.delays = delays
        given = parse_dsn(dsn)
        self._dsn = dsn
        self._connect_kw = {k: v for k, v in CONNECT_DEFAULTS.items() if k not in given}
        self._pool = [self._new_connection() for _ in range(pool_size)]
        self._next = 0
        self._listen_conn: Connection | None = None
        self._listener: IRegistryListener | None = None
        self.channel = "weightless_registry"

    def _new_connection(self) -> Connection:
        return _Connection(self.reactor, detector=_Detector(self.delays, self.reactor))

    def _connect(self, conn: Connection) -> Deferred[Any]:
        d: Deferred[Any] = conn.connect(self._dsn, **self._connect_kw)
        return d

    # -- running queries

    def _live(self) -> list[Connection]:
        return [
            c
            for c in self._pool
            if not c.detector.connectionIsDead
            and c._connection is not None
            and not c._connection.closed
        ]

    def _run(self, work: Callable[[Connection], Deferred[T]], retry: bool = False) -> Deferred[T]:
        """Run ``work`` on the least busy live connection (each runs one query at a time, the
        rest wait in its lock). With ``retry`` (reads only), a query that finds its connection
        dead runs once more on another, so a restart of the server costs readers nothing."""
        live = self._live()
        if not live:
            return fail(StoreUnavailable("no database connection"))
        self._next = (self._next + 1) % len(live)
        turn = live[self._next :] + live[: self._next]  # ties go round robin
        conn = min(turn, key=lambda c: (c.lock.locked, len(c.lock.waiting)))
        d = work(conn)
        if retry:
            d.addErrback(self._retry, work)
        return _detach(d.addErrback(_unavailable))

    def _retry(self, failure: Failure, work: Callable[[Connection], Deferred[T]]) -> Any:
        failure.trap(*DEAD)
        return self._run(work)

    def _query(self, query: str, params: Any = None, retry: bool = True) -> Deferred[list[Any]]:
        return self._run(lambda c: c.runQuery(query, params), retry)

    def _transaction(self, work: Callable[[Cursor], Awaitable[T]]) -> Deferred[T]:
        def interaction(cursor: Cursor) -> Deferred[T]:
            return Deferred.fromCoroutine(_coro(work(cursor)))

        return self._run(lambda c: c.runInteraction(interaction))

    async def _notify(self, cursor: Cursor, message: dict[str, Any]) -> None:
        await cursor.execute("SELECT pg_notify(%s, %s)", (self.channel, json.dumps(message)))

    async def _lock_publisher(self, cursor: Cursor, publisher: str) -> None:
        """Serialize a publisher's trust changes with writes of its entries, taken first in
        both: without it, an entry written while its publisher's keys change could keep a
        ``verified`` computed from the old keys (each transaction missing the other's rows)."""
        await cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('weightless-publisher:' || %s))", (publisher,)
        )

    async def _lock_hashes(self, cursor: Cursor, hashes: list[str]) -> None:
        """Serialize writes of entries sharing a hash (in order, so two never wait on each
        other): the check that no other entry holds one of them then sees any such write
        that committed first, whichever column it put the hash in."""
        for h in sorted(set(hashes)):
            await cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext('weightless-hash:' || %s))", (h,)
            )

    # -- lifecycle

    def open(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._open())

    async def _open(self) -> None:
        try:
            await gatherResults([self._connect(c) for c in self._pool], consumeErrors=True)
        except Exception as e:
            for conn in self._pool:
                _close(conn)
            cause = getattr(e, "subFailure", None)
            message = cause.getErrorMessage() if cause is not None else str(e)
            # libpq's messages span lines; the operator gets one
            raise StoreUnavailable(f"PostgreSQL: {' '.join(message.split())}") from None
        rows = await self._query("SELECT current_schema()")
        schema = rows[0][0] or "public"
        # NOTIFY channels are per database: one per schema keeps registries apart
        self.channel = "weightless_registry_" + hashlib.sha1(schema.encode()).hexdigest()[:16]
        await self._transaction(self._migrate)

    async def _migrate(self, cursor: Cursor) -> None:
        # one process at a time migrates a schema
        await cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('weightless:' || current_schema()))"
        )
        await cursor.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        await cursor.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in cursor.fetchall()}
        for version, text in migrations("postgresql"):
            if version not in done:
                await cursor.execute(text)
                await cursor.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s)", (version, self.clock())
                )

    def close(self) -> Deferred[None]:
        conns = [*self._pool, *([self._listen_conn] if self._listen_conn else [])]
        for conn in conns:
            conn.detector.stop()
            _close(conn)
        self._listen_conn = None
        return succeed(None)

    def ping(self) -> Deferred[None]:
        return self._query("SELECT 1").addCallback(lambda _: None)

    # -- the tracker's side

    def snapshot(self) -> Deferred[Snapshot]:
        return Deferred.fromCoroutine(self._snapshot(self._query))

    async def _snapshot(self, query: Callable[[str], Deferred[list[Any]]]) -> Snapshot:
        rows = await query("SELECT info_hash, v1_info_hash, completions FROM registry")
        blocked = await query("SELECT info_hash FROM blocklist")
        return Snapshot(
            [CatalogEntry(h, v1, int(n)) for h, v1, n in rows], [row[0] for row in blocked]
        )

    def flush(self, pending: PendingWrites) -> Deferred[None]:
        completions = list(pending.completions.items())
        traffic = [(user, up, down) for user, (up, down) in pending.traffic.items()]
        now = self.clock()

        up_sum = sql.saturating_sum("users.uploaded", "excluded.uploaded")
        down_sum = sql.saturating_sum("users.downloaded", "excluded.downloaded")

        async def write(cursor: Cursor) -> None:
            if completions:
                await cursor.execute(
                    "UPDATE registry AS r SET completions = "
                    f"{sql.saturating_sum('r.completions', 'v.n')} "
                    "FROM unnest(%s::text[], %s::bigint[]) AS v(h, n) WHERE r.info_hash = v.h",
                    ([h for h, _ in completions], [n for _, n in completions]),
                )
            if traffic:
                await cursor.execute(
                    "INSERT INTO users (user_id, uploaded, downloaded, updated_at) "
                    "SELECT u, up, down, %s FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) "
                    "AS v(u, up, down) ON CONFLICT (user_id) DO UPDATE SET "
                    f"uploaded = {up_sum}, downloaded = {down_sum}, "
                    "updated_at = excluded.updated_at",
                    (now, *map(list, zip(*traffic, strict=True))),
                )
                if self.usage_sync:
                    await cursor.execute(
                        "INSERT INTO usage_deltas (user_id, uploaded, downloaded) "
                        "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[])",
                        tuple(map(list, zip(*traffic, strict=True))),
                    )

        return self._transaction(write).addErrback(_rejected)

    def save_counts(self, counts: dict[str, tuple[int, int]], reset: bool) -> Deferred[None]:
        hashes = list(counts)

        async def write(cursor: Cursor) -> None:
            if reset:
                await cursor.execute(
                    "UPDATE registry SET seeders = 0, leechers = 0 "
                    "WHERE seeders <> 0 OR leechers <> 0"
                )
            if hashes:
                await cursor.execute(
                    "UPDATE registry AS r SET seeders = v.s, leechers = v.l FROM "
                    "unnest(%s::text[], %s::bigint[], %s::bigint[]) AS v(h, s, l) "
                    "WHERE r.info_hash = v.h",
                    (hashes, [counts[h][0] for h in hashes], [counts[h][1] for h in hashes]),
                )

        return self._transaction(write)

    def usage_tick(self, sync_id: str, sender: str, lease: float) -> Deferred[bool]:
        now = self.clock()

        async def write(cursor: Cursor) -> bool:
            # one at a time, whatever process: the rows folded are the rows deleted
            await cursor.execute("SELECT pg_advisory_xact_lock(hashtext('weightless-usage'))")
            await cursor.execute(
                "SELECT id, user_id, uploaded, downloaded FROM usage_deltas ORDER BY id"
            )
            rows = cursor.fetchall()
            if rows:
                await cursor.execute(
                    "INSERT INTO usage_batches (sync_id, deltas, created_at) VALUES (%s, %s, %s)",
                    (sync_id, fold_deltas(r[1:] for r in rows), now),
                )
                await cursor.execute("DELETE FROM usage_deltas WHERE id <= %s", (rows[-1][0],))
            await cursor.execute(
                "INSERT INTO usage_sender (id, holder, until) VALUES (1, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, "
                "until = excluded.until WHERE usage_sender.holder = excluded.holder "
                "OR usage_sender.until < %s RETURNING holder",
                (sender, now + lease, now),
            )
            return cursor.fetchone() is not None

        return self._transaction(write)

    def usage_release(self, sender: str) -> Deferred[None]:
        d = self._run(
            lambda c: c.runOperation("DELETE FROM usage_sender WHERE holder = %s", (sender,))
        )
        return d.addCallback(lambda _: None)

    def usage_waiting(self, limit: int) -> Deferred[list[tuple[int, str, str]]]:
        d = self._query(
            "SELECT id, sync_id, deltas FROM usage_batches WHERE set_aside IS NULL "
            "ORDER BY id LIMIT %s",
            (limit,),
        )
        return d.addCallback(lambda rows: [(int(r[0]), str(r[1]), str(r[2])) for r in rows])

    def usage_done(self, batch: int, status: int | None) -> Deferred[None]:
        params: tuple[int, ...]
        if status is None:
            query, params = "DELETE FROM usage_batches WHERE id = %s", (batch,)
        else:
            query, params = "UPDATE usage_batches SET set_aside = %s WHERE id = %s", (status, batch)
        return self._run(lambda c: c.runOperation(query, params)).addCallback(lambda _: None)

    def user(self, user_id: str) -> Deferred[tuple[int, int] | None]:
        d = self._query("SELECT uploaded, downloaded FROM users WHERE user_id = %s", (user_id,))
        return d.addCallback(lambda rows: (int(rows[0][0]), int(rows[0][1])) if rows else None)

    # -- the registry's side

    def upsert(
        self,
        entry: Entry,
        torrent_data: bytes | None = None,
        meta: str | None = None,
        owner: str | None = None,
        signed_namespaces: bool = False,
    ) -> Deferred[int]:
        params = sql.upsert_params(entry, torrent_data, meta, self.clock(), owner)

        async def write(cursor: Cursor) -> int:
            if entry.publisher is not None:
                await self._lock_publisher(cursor, entry.publisher)
            if signed_namespaces:
                await cursor.execute(sql.UNSIGNED_SQL.format(m="%s"), sql.unsigned_params(entry))
                unsigned = cursor.fetchone()
                if unsigned is not None:
                    raise Unsigned(unsigned[0])
            await self._lock_hashes(cursor, entry.hashes())
            await cursor.execute(sql.TAKEN_SQL.format(m="%s"), sql.taken_params(entry))
            if cursor.fetchone():
                raise Conflict(entry.info_hash)
            await cursor.execute(sql.upsert_sql("%s"), params)
            row = cursor.fetchone()
            if row is None:
                await cursor.execute(sql.BLOCKED_SQL.format(m="%s"), sql.blocked_params(entry))
                if cursor.fetchone():
                    raise Blocked(entry.info_hash)
                raise NotOwner(entry.info_hash)
            completions = int(row[0])
            entry.v1_info_hash = row[1]  # the stored one, when the upsert gave none
            entry.created_at = float(row[2])  # the first registration's
            await cursor.execute(sql.reverify_sql("%s", "info_hash = {mark}"), (entry.info_hash,))
            await self._notify(
                cursor,
                {
                    "op": "upsert",
                    "info_hash": entry.info_hash,
                    "v1_info_hash": entry.v1_info_hash,
                    "completions": completions,
                },
            )
            return completions

        return self._transaction(write)

    def takedown(
        self, info_hash: str, reason: str, owner: str | None = None
    ) -> Deferred[list[str]]:
        now = self.clock()

        async def write(cursor: Cursor) -> list[str]:
            await cursor.execute(
                "DELETE FROM registry WHERE info_hash = %s OR v1_info_hash = %s "
                "RETURNING info_hash, v1_info_hash, publisher",
                (info_hash, info_hash),
            )
            rows = cursor.fetchall()
            if owner is not None and (not rows or any(row[2] != owner for row in rows)):
                raise NotOwner(info_hash)  # the transaction is rolled back: nothing deleted
            found = [h for row in rows for h in row[:2] if h]
            hashes = list(dict.fromkeys([*found, info_hash]))
            await cursor.execute(
                "INSERT INTO blocklist (info_hash, reason, blocked_at) "
                "SELECT h, %s, %s FROM unnest(%s::text[]) AS h "
                "ON CONFLICT (info_hash) DO UPDATE SET reason = excluded.reason",
                (reason, now, hashes),
            )
            await self._notify(cursor, {"op": "takedown", "hashes": hashes})
            return hashes

        return self._transaction(write)

    def trusted_keys(self, publisher: str) -> Deferred[list[str]]:
        d = self._query(
            "SELECT public_key FROM publisher_keys WHERE publisher = %s ORDER BY public_key",
            (publisher,),
        )
        return d.addCallback(lambda rows: [row[0] for row in rows])

    def set_trusted_keys(self, publisher: str, keys: list[str]) -> Deferred[None]:
        async def write(cursor: Cursor) -> None:
            await self._lock_publisher(cursor, publisher)
            await cursor.execute("DELETE FROM publisher_keys WHERE publisher = %s", (publisher,))
            await cursor.execute(
                "INSERT INTO publisher_keys (publisher, public_key) "
                "SELECT %s, k FROM unnest(%s::text[]) AS k",
                (publisher, keys),
            )
            await cursor.execute(sql.reverify_sql("%s", "publisher = {mark}"), (publisher,))

        return self._transaction(write)

    def set_operator_mark(self, info_hash: str, verified: bool) -> Deferred[Entry | None]:
        which = "info_hash = {mark} OR v1_info_hash = {mark}".format(mark="%s")

        async def write(cursor: Cursor) -> Entry | None:
            await cursor.execute(
                f"UPDATE registry SET operator_verified = %s WHERE {which}",
                (verified, info_hash, info_hash),
            )
            await cursor.execute(
                sql.reverify_sql("%s", which) + f" RETURNING {sql.SELECT_ENTRY}",
                (info_hash, info_hash),
            )
            row = cursor.fetchone()
            return None if row is None else sql.entry_from_row(row)

        return self._transaction(write)

    def entry(self, info_hash: str) -> Deferred[Entry | None]:
        d = self._query(
            f"SELECT {sql.SELECT_ENTRY} FROM registry WHERE info_hash = %s "
            f"UNION ALL SELECT {sql.SELECT_ENTRY} FROM registry WHERE v1_info_hash = %s LIMIT 1",
            (info_hash, info_hash),
        )
        return d.addCallback(lambda rows: sql.entry_from_row(rows[0]) if rows else None)

    def torrent(self, info_hash: str) -> Deferred[tuple[str, bytes] | None]:
        d = self._query(
            "SELECT name, torrent_data FROM registry WHERE info_hash = %s "
            "UNION ALL SELECT name, torrent_data FROM registry WHERE v1_info_hash = %s LIMIT 1",
            (info_hash, info_hash),
        )

        def found(rows: list[Any]) -> tuple[str, bytes] | None:
            if not rows or rows[0][1] is None:
                return None
            return rows[0][0], bytes(rows[0][1])

        return d.addCallback(found)

    def meta(self, info_hash: str) -> Deferred[tuple[str | None, bytes | None] | None]:
        d = self._query(sql.META_SQL.format(m="%(h)s") + " LIMIT 1", {"h": info_hash})

        def found(rows: list[Any]) -> tuple[str | None, bytes | None] | None:
            if not rows:
                return None
            meta, data = rows[0]
            return meta, None if data is None else bytes(data)

        return d.addCallback(found)

    def save_meta(self, info_hash: str, meta: str) -> Deferred[None]:
        query = sql.SAVE_META_SQL.format(meta="%(meta)s", h="%(h)s")
        values = {"meta": meta, "h": info_hash}
        d: Deferred[Any] = self._run(lambda c: c.runOperation(query, values))
        return d.addCallback(lambda _: None)

    def card(self, info_hash: str) -> Deferred[str | None]:
        d = self._query(sql.CARD_SQL.format(m="%(h)s") + " LIMIT 1", {"h": info_hash})
        return d.addCallback(lambda rows: rows[0][0] if rows else None)

    def set_card(
        self, info_hash: str, text: str, owner: str | None = None, signed_namespaces: bool = False
    ) -> Deferred[bool]:
        async def write(cursor: Cursor) -> bool:
            # the row locked against a change of hands, then its publisher's lock against a
            # change of trust, before either is checked
            await cursor.execute(
                "SELECT info_hash, publisher FROM registry "
                "WHERE info_hash = %(h)s OR v1_info_hash = %(h)s FOR UPDATE",
                {"h": info_hash},
            )
            row = cursor.fetchone()
            if row is None:
                return False
            key, publisher = row
            if owner is not None and publisher != owner:
                raise NotOwner(info_hash)
            if signed_namespaces and publisher is not None:
                await self._lock_publisher(cursor, publisher)
                await cursor.execute(sql.HAS_KEYS_SQL.format(m="%s"), (publisher,))
                if cursor.fetchone():
                    raise Unsigned(publisher)
            query = sql.SET_CARD_SQL.format(card="%s", h="%s")
            await cursor.execute(query, (text, key))
            return True

        return self._transaction(write)

    def card_view(self, info_hash: str, renderer: str) -> Deferred[tuple[str, str | None] | None]:
        query = sql.CARD_VIEW_SQL.format(m="%(h)s", r="%(r)s") + " LIMIT 1"
        d = self._query(query, {"h": info_hash, "r": renderer})
        return d.addCallback(lambda rows: (rows[0][0], rows[0][1]) if rows else None)

    def save_card_html(self, info_hash: str, card: str, renderer: str, html: str) -> Deferred[None]:
        query = sql.SAVE_CARD_HTML_SQL.format(
            html="%(html)s", r="%(r)s", h="%(h)s", card="%(card)s"
        )
        values = {"html": html, "r": renderer, "h": info_hash, "card": card}
        d: Deferred[Any] = self._run(lambda c: c.runOperation(query, values))
        return d.addCallback(lambda _: None)

    def search(self, query: Search) -> Deferred[tuple[list[Entry], int]]:
        page, count, params = sql.search_sql(query, "%s", _contains)
        d = gatherResults(
            [
                self._query(page, (*params, query.limit, query.offset)),
                self._query(count, params),
            ],
            consumeErrors=True,
        )

        def done(results: list[list[Any]]) -> tuple[list[Entry], int]:
            rows, total = results
            return [sql.entry_from_row(r) for r in rows], int(total[0][0])

        return d.addCallbacks(done, lambda f: f.value.subFailure)

    # -- other processes' writes

    def watch(self, listener: IRegistryListener) -> None:
        self._listener = listener
        conn = self._listen_conn = self._new_connection()
        conn.addNotifyObserver(self._notified)
        conn.detector.addRecoveryHandler(self._listen)
        d = self._connect(conn)
        d.addCallback(lambda _: self._listen())
        d.addErrback(conn.detector.checkForDeadConnection)  # keeps trying in the background
        d.addErrback(self._listen_failed)

    def _listen(self) -> Deferred[None]:
        """LISTEN, then reload the state: anything written before LISTEN took effect is in the
        snapshot, anything after arrives as a notification (handled after the reload)."""
        conn = self._listen_conn
        if conn is None or self._listener is None:
            return succeed(None)
        listener = self._listener

        async def listen() -> None:
            await conn.runOperation(f"LISTEN {self.channel}")
            snapshot = await self._snapshot(conn.runQuery)
            listener.resync(snapshot)

        return Deferred.fromCoroutine(listen()).addErrback(self._listen_failed)

    def _listen_failed(self, failure: Failure) -> None:
        self.log.warn("registry change feed: {e}", e=failure.getErrorMessage())

    def _notified(self, notify: Any) -> None:
        if notify.channel != self.channel or self._listener is None:
            return
        try:
            message = json.loads(notify.payload)
            if message["op"] == "upsert":
                self._listener.upserted(
                    message["info_hash"], message["v1_info_hash"], int(message["completions"])
                )
            elif message["op"] == "takedown":
                self._listener.taken_down(list(message["hashes"]))
        except Exception:
            self.log.failure("bad registry notification {p!r}", p=notify.payload)


def _rejected(failure: Failure) -> Failure:
    """A value PostgreSQL refuses (out of range, a NUL in text) as Rejected: retrying the same
    batch cannot succeed."""
    if failure.check(psycopg2.DataError, psycopg2.IntegrityError, Conflict, ValueError, TypeError):
        return Failure(Rejected(failure.getErrorMessage()))
    return failure


def _detach(d: Deferred[T]) -> Deferred[T]:
    """A Deferred with ``d``'s result whose cancellation (a timeout, a client gone) fails it at
    once and leaves the query to finish: txpostgres cannot stop a query midway."""
    out: Deferred[T] = Deferred()

    def settle(result: Any) -> None:
        if not out.called:
            if isinstance(result, Failure):
                out.errback(result)
            else:
                out.callback(result)

    d.addBoth(settle)
    return out


async def _coro(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _close(conn: Connection) -> None:
    if conn._connection is not None:
        with contextlib.suppress(psycopg2.Error):
            conn.close()
