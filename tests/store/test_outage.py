"""When the database goes away, on both backends: announces are still answered from memory,
/health says 503, the registry answers 503 JSON at once (no timeout involved), and queued
completions and user traffic are kept and written once the database is back."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_twisted
from helpers import make_passkey
from registry_kit import Server, TcpProxy, make_store, pg_target, raw_sql, until_ok, via
from twisted.internet.task import Clock

from weightless.registry.sqlite import SQLiteStore
from weightless.registry.store import IStore
from weightless.service import Maintenance

V2 = hashlib.sha256(b"outage").hexdigest()
V1 = hashlib.sha1(b"outage").hexdigest()


@dataclass
class Database:
    """A store on the backend under test, and a way to take its database away."""

    store: IStore
    proxy: TcpProxy | None
    path: str = ""

    async def go_away(self) -> None:
        if self.proxy is not None:
            await self.proxy.cut()
            return
        assert isinstance(self.store, SQLiteStore)
        store = self.store
        self.path, store.path = store.path, "/nonexistent/weightless/registry.db"
        await store._run(lambda conn: conn.close())
        store._conn = None  # the next query has to open the file again, and cannot

    async def come_back(self) -> None:
        if self.proxy is not None:
            self.proxy.start()
        else:
            assert isinstance(self.store, SQLiteStore)
            self.store.path = self.path


@pytest_twisted.async_yield_fixture
async def database(store_url: str) -> AsyncIterator[Database]:
    proxy = None
    url = store_url
    if not url.startswith("sqlite:"):
        proxy = TcpProxy(*pg_target(url))
        url = via(url, proxy.start())
    db = Database(make_store(url), proxy)
    await db.store.open()
    yield db
    await db.store.close()
    if proxy is not None:
        await proxy.cut()


@pytest_twisted.ensureDeferred
async def test_outage_and_recovery(database: Database, store_url: str) -> None:
    store = database.store
    # the store's answers are timed by a clock that never moves here: every 503 below is the
    # database failing fast, none is a timeout (which would leave the request hanging)
    clock = Clock()
    server = await Server.start(store, secret=b"s", timeout=3.0, clock=clock)
    try:
        passkey = make_passkey("s", "alice")
        assert (await server.post_json({"info_hash": V2, "v1_info_hash": V1, "name": "n"})).status
        maintenance = Maintenance(
            store, server.stack.pending, server.stack.swarms, None, 3600, server.stack.reactor
        )
        await database.go_away()

        # the tracker goes on from memory
        wire = bytes.fromhex(V1)
        await server.announce(wire, 7001, passkey=passkey, event="started", uploaded=10)
        reply = await server.announce(wire, 7001, passkey=passkey, left=0, event="completed")
        assert reply[b"complete"] == 1 and reply[b"downloaded"] == 1

        health = await server.get("/health")
        assert health.status == 503
        for call in (
            server.get("/api/registry", info_hash=V2),
            server.get("/api/registry/search", q="n"),
            server.get("/api/registry/meta", info_hash=V2),
            server.post_json({"info_hash": V2, "name": "renamed"}),
            server.request("DELETE", "/api/registry", info_hash=V2),
        ):
            response = await call
            assert response.status == 503, response.body
            assert set(response.json()) == {"error"}

        # the queued completion and traffic stay queued while the flush fails
        await maintenance.flush()
        assert server.stack.pending.completions == {V2: 1}
        assert server.stack.pending.traffic == {"alice": [10, 0]}

        await database.come_back()
        await until_ok(store.ping)
        await maintenance.flush()
        assert not server.stack.pending
        assert raw_sql(store_url, "SELECT completions FROM registry") == [(1,)]
        assert raw_sql(store_url, "SELECT uploaded FROM users WHERE user_id = 'alice'") == [(10,)]
        clock.advance(1.0)  # /health pings at most once a second
        assert (await server.get("/health")).status == 200
        entry = (await server.get("/api/registry", info_hash=V1)).json()
        assert (entry["completions"], entry["seeders"]) == (1, 1)
        r = await server.post_json({"info_hash": V2, "v1_info_hash": V1, "name": "renamed"})
        assert r.status == 201
    finally:
        await server.stop()
