"""What only PostgreSQL does: several processes sharing one registry (LISTEN/NOTIFY), a pool
that outlives server restarts, a hung server answered in seconds, trigram search indexes."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg2
import pytest_twisted
from pgserver import PostgresServer, fresh_schema, skip_or_fail
from psycopg2.extensions import make_dsn
from registry_kit import (
    Server,
    TcpProxy,
    make_store,
    pg_target,
    raw_sql,
    until_ok,
    via,
    wait,
)
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from weightless.registry.entries import Entry
from weightless.registry.live import LiveRegistry
from weightless.registry.migrations import migrations
from weightless.registry.search import Search
from weightless.tracker.catalog import Catalog
from weightless.tracker.swarm import SwarmStore
from weightless.web.app import HEALTH_TIMEOUT

V2 = hashlib.sha256(b"pg").hexdigest()
V1 = hashlib.sha1(b"pg").hexdigest()


async def eventually(check: Callable[[], bool], within: float = 30.0) -> None:
    """Wait until ``check()`` holds. ``within`` only keeps a broken build from hanging: it is
    no claim about speed (a 2-core CI shared with other jobs is slow at times)."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "never happened"
        await wait(0.01)


class Process:
    """Another tracker process on the same database: its own store, catalog and swarms."""

    def __init__(self, dsn: str) -> None:
        self.store = make_store(dsn)
        self.catalog = Catalog()
        self.swarms = SwarmStore(lambda: 0.5)
        self.live = LiveRegistry(self.catalog, self.swarms)

    async def start(self) -> Process:
        await self.store.open()
        snapshot = await self.store.snapshot()
        self.catalog.load(snapshot.entries, snapshot.blocked)
        self.store.watch(self.live)
        return self


@pytest_twisted.async_yield_fixture
async def processes(postgres_dsn: str) -> AsyncIterator[Callable[..., Any]]:
    started: list[Process] = []

    async def start(dsn: str = postgres_dsn) -> Process:
        process = await Process(dsn).start()
        started.append(process)
        return process

    yield start
    for process in started:
        await process.store.close()


@pytest_twisted.ensureDeferred
async def test_writes_reach_other_processes(
    processes: Callable[..., Any], postgres_dsn: str
) -> None:
    other = await processes()
    await wait(0.2)  # its LISTEN is in place
    store = make_store(postgres_dsn)
    await store.open()
    server = await Server.start(store)
    try:
        await server.post_json({"info_hash": V2, "v1_info_hash": V1, "name": "shared"})
        await eventually(lambda: other.catalog.lookup(V1) is not None)
        assert other.catalog.by_wire[bytes.fromhex(V1)][0] == bytes.fromhex(V2)[:20]

        other.swarms.put(bytes.fromhex(V2)[:20], b"\x7f\x00\x00\x01\x1b\x59", b"p" * 20, True, 1)
        await server.request("DELETE", "/api/registry", info_hash=V1, reason="dmca")
        await eventually(lambda: other.catalog.lookup(V2) is None)
        assert bytes.fromhex(V1) in other.catalog.blocked
        assert bytes.fromhex(V2)[:20] in other.catalog.blocked
        assert other.swarms.peer_count == 0  # its peers are dropped there too
    finally:
        await server.stop()
        await store.close()


@pytest_twisted.ensureDeferred
async def test_pool_and_feed_survive_killed_connections(
    processes: Callable[..., Any], postgres_dsn: str
) -> None:
    """What a server restart looks like from the client: every connection killed at once."""
    name = "wl-" + uuid.uuid4().hex[:12]
    dsn = make_dsn(postgres_dsn, application_name=name)
    other = await processes(dsn)
    writer = await processes()
    await wait(0.2)
    killed = raw_sql(
        postgres_dsn,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?",
        (name,),
    )
    assert len(killed) == 5  # the pool of 4 and the LISTEN connection

    await until_ok(other.store.ping, within=5.0)
    # the change feed LISTENs again and catches up
    await writer.store.upsert(Entry(V2, "after the restart", V1))
    await eventually(lambda: other.catalog.lookup(V1) is not None, within=5.0)
    found, total = await other.store.search(Search(q="restart"))
    assert total == 1 and found[0].info_hash == V2


@pytest_twisted.ensureDeferred
async def test_missed_notifications_are_caught_up_on_reconnection(
    processes: Callable[..., Any], postgres_dsn: str
) -> None:
    proxy = TcpProxy(*pg_target(postgres_dsn))
    other = await processes(via(postgres_dsn, proxy.start()))
    writer = await processes()
    await writer.store.upsert(Entry(V2, "before", V1))
    await eventually(lambda: other.catalog.lookup(V2) is not None)
    try:
        await proxy.cut()
        await writer.store.takedown(V2, "gone while away")
        await writer.store.upsert(Entry(hashlib.sha256(b"new").hexdigest(), "new"))
        await wait(0.3)
        assert other.catalog.lookup(V2) is not None  # it cannot know yet
        proxy.start()
        await eventually(lambda: other.catalog.lookup(V2) is None, within=5.0)
        assert bytes.fromhex(V1) in other.catalog.blocked
        assert len(other.catalog.entries) == 1
    finally:
        await proxy.cut()


@pytest_twisted.ensureDeferred
async def test_a_hung_server_is_a_503_in_seconds(postgres_dsn: str) -> None:
    proxy = TcpProxy(*pg_target(postgres_dsn))
    store = make_store(via(postgres_dsn, proxy.start()))
    await store.open()
    clock = Clock()  # times the database's answers: moves only when the test says
    server = await Server.start(store, timeout=1.0, clock=clock)
    try:
        await server.post_json({"info_hash": V2, "name": "n"})
        proxy.freeze()
        for path in ("/api/registry/search", "/api/registry", "/health"):
            answer = Deferred.fromCoroutine(server.get(path, info_hash=V2))
            await wait(0.3)
            assert not answer.called  # the query hangs: nothing but the timeout answers
            clock.advance(HEALTH_TIMEOUT if path == "/health" else 1.0)
            r = await answer
            assert r.status == 503, (path, r.body)
            if path != "/health":
                assert "error" in r.json()
        proxy.thaw()
        clock.advance(1.0)  # /health pings again at most once a second
        await wait(0.2)
        assert (await server.get("/api/registry", info_hash=V2)).status == 200
    finally:
        await server.stop()
        await store.close()
        await proxy.cut()


@pytest_twisted.ensureDeferred
async def test_survives_a_real_server_restart() -> None:
    """A throwaway cluster of our own, restarted with pg_ctl (the shared one is left alone)."""
    cluster = PostgresServer()
    try:
        server = cluster._throwaway()
    except Exception as e:
        skip_or_fail(f"no throwaway PostgreSQL cluster here: {e}")
    try:
        with fresh_schema(server) as dsn:
            store = make_store(dsn)
            await store.open()
            await store.upsert(Entry(V2, "survivor"))
            cluster.restart()
            found = await until_ok(lambda: store.entry(V2), within=15.0)
            assert found is not None and found.name == "survivor"
            await store.close()
    finally:
        cluster.stop()


@pytest_twisted.ensureDeferred
async def test_substring_search_uses_trigram_indexes(postgres_dsn: str) -> None:
    store = make_store(postgres_dsn)
    await store.open()
    await store.close()
    conn = psycopg2.connect(postgres_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SET enable_seqscan = off")
            cur.execute("EXPLAIN SELECT * FROM registry WHERE name ILIKE %s", ("%llama%",))
            plan = "\n".join(row[0] for row in cur.fetchall())
            assert "registry_name_trgm" in plan
            cur.execute("EXPLAIN SELECT * FROM registry WHERE tags ILIKE %s", ("%fp16%",))
            assert "registry_tags_trgm" in "\n".join(row[0] for row in cur.fetchall())
            cur.execute("SELECT version FROM schema_migrations ORDER BY version")
            assert [row[0] for row in cur.fetchall()] == [v for v, _ in migrations("postgresql")]
    finally:
        conn.close()


@pytest_twisted.ensureDeferred
async def test_parameters_are_bound_not_formatted(postgres_dsn: str) -> None:
    store = make_store(postgres_dsn)
    await store.open()
    try:
        evil = "x'); DROP TABLE registry; --"
        await store.upsert(Entry(V2, evil, category=evil))
        found, total = await store.search(Search(q="drop table", category=evil))
        assert total == 1 and found[0].name == evil
    finally:
        await store.close()
