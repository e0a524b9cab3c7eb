"""What the registry tests share: stores by URL, torrents made by libtorrent, and a tracker
with the registry API listening on a real loopback port, wired as ``weightless.tap`` wires it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import libtorrent as lt
import pytest_twisted
import treq
from helpers import Stack, announce_path, build_stack
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort
from twisted.web.client import HTTPConnectionPool

from weightless.registry.postgres import PostgresStore
from weightless.registry.sqlite import SQLiteStore
from weightless.registry.store import IStore
from weightless.torrent.magnet import form_encode
from weightless.web.registry_api import RegistryAPI

T = TypeVar("T")
FLAGS = {"hybrid": 0, "v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only}


def fast_retries() -> Any:
    """Reconnect tries for tests: at once, then every 0.1 s."""
    yield 0.0
    while True:
        yield 0.1


def make_store(url: str, **kw: Any) -> IStore:
    if url.startswith("sqlite:///"):
        return SQLiteStore(url[len("sqlite:///") :], reactor, **kw)
    return PostgresStore(url, reactor, delays=fast_retries, **kw)


def make_torrent(root: Path, name: str, version: str = "hybrid", size: int = 40000) -> bytes:
    """A .torrent of one file ``root/name`` (created with distinct content), by libtorrent."""
    path = root / name
    if not path.exists():
        path.write_bytes(name.encode() * (size // len(name) + 1))
    ct = lt.create_torrent(lt.list_files(str(path)), 16384, FLAGS[version])
    lt.set_piece_hashes(ct, str(root))
    return bytes(lt.bencode(ct.generate()))


def make_folder_torrent(root: Path, name: str, files: dict[str, int]) -> bytes:
    """A hybrid .torrent of a folder ``root/name`` holding ``files`` (relative path: size in
    bytes, each with distinct content), by libtorrent."""
    for rel, size in files.items():
        path = root / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = f"{name}/{rel}".encode()
        path.write_bytes((seed * (size // len(seed) + 1))[:size])
    ct = lt.create_torrent(lt.list_files(str(root / name)), 16384)
    lt.set_piece_hashes(ct, str(root))
    return bytes(lt.bencode(ct.generate()))


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lowercased names
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("content-type") == "application/json", self.headers
        return json.loads(self.body)


class Server:
    """A tracker with the registry API on 127.0.0.1, as ``twistd weightless`` runs it."""

    def __init__(self, store: IStore, stack: Stack, api: RegistryAPI) -> None:
        self.store = store
        self.stack = stack
        self.api = api
        self.live = api.registry.live
        self.port: IListeningPort | None = None
        self.pool = HTTPConnectionPool(reactor, persistent=False)

    @classmethod
    async def start(
        cls,
        store: IStore,
        *,
        registry_key: str | None = None,
        cors_origins: tuple[str, ...] = (),
        rate_limit: float = 0.0,
        open_tracker: bool = False,
        secret: bytes | None = None,
        timeout: float = 5.0,
        trusted_proxies: tuple[str, ...] = (),
        clock: Any = None,
    ) -> Server:
        """``clock``: what times the database's answers (the reactor unless given)."""
        stack = build_stack(
            store,
            reactor,
            open_tracker=open_tracker,
            rate_limit=rate_limit,
            secret=secret,
            trusted_proxies=trusted_proxies,
            registry_key=registry_key,
            cors_origins=cors_origins,
            store_timeout=timeout,
            clock=clock,
        )
        snapshot = await store.snapshot()
        stack.catalog.load(snapshot.entries, snapshot.blocked)
        api = stack.api
        server = cls(store, stack, api)
        server.port = reactor.listenTCP(0, stack.front, interface="127.0.0.1")
        return server

    @property
    def url(self) -> str:
        assert self.port is not None
        return f"http://127.0.0.1:{self.port.getHost().port}"

    @property
    def announce_tr(self) -> str:
        """This server's announce URL as a magnet link's ``tr`` value (form-encoded)."""
        return form_encode(self.url + "/announce")

    async def stop(self) -> None:
        await self.pool.closeCachedConnections()
        if self.port is not None:
            await self.port.stopListening()
        await self.stack.parse_pool.stopService()

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> Response:
        response = await treq.request(
            method,
            self.url + path,
            params={k: v for k, v in params.items() if v is not None} or None,
            data=body,
            headers={k: [v] for k, v in (headers or {}).items()},
            pool=self.pool,
        )
        content = await response.content()
        found = {
            k.decode().lower(): v[-1].decode("latin-1")
            for k, v in response.headers.getAllRawHeaders()
        }
        return Response(response.code, found, content)

    async def get(self, path: str, **params: Any) -> Response:
        return await self.request("GET", path, **params)

    async def post_json(self, value: Any, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(value).encode()
        merged = {"Content-Type": "application/json", **(headers or {})}
        return await self.request("POST", "/api/registry", body, merged)

    async def upload(
        self, data: bytes, headers: dict[str, str] | None = None, **params: Any
    ) -> Response:
        """POST /api/registry/torrent with the raw file, as `weightless publish` sends it."""
        merged = {"Content-Type": "application/x-bittorrent", **(headers or {})}
        return await self.request("POST", "/api/registry/torrent", data, merged, **params)

    async def announce(
        self, info_hash: bytes, port: int, refused: bool = False, **params: Any
    ) -> dict[bytes, Any]:
        """One announce from 127.0.0.1:port (``left=0`` makes a seeder)."""
        import bencodepy

        path = announce_path(info_hash, port, **params).decode()
        response = await treq.get(self.url + path, pool=self.pool)
        reply: dict[bytes, Any] = bencodepy.decode(await response.content())
        assert (b"failure reason" in reply) == refused, reply
        return reply


def wait(seconds: float) -> Deferred[None]:
    from twisted.internet.task import deferLater

    return deferLater(reactor, seconds, lambda: None)


def raw_sql(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement straight on the database (blocking; tests only). ``?`` placeholders."""
    if url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.close()
    import psycopg2

    pg = psycopg2.connect(url)
    pg.autocommit = True
    try:
        with pg.cursor() as cur:
            cur.execute(query.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []
    finally:
        pg.close()


class TcpProxy:
    """A TCP forwarder in front of PostgreSQL that a test can cut (the server is gone: every
    connection dies and new ones are refused), freeze (packets go nowhere: queries hang) and
    restore."""

    def __init__(self, host: str, port: int) -> None:
        from twisted.protocols import portforward

        proxy = self

        class Server(portforward.ProxyServer):
            def connectionMade(self) -> None:
                proxy.connections.add(self)
                super().connectionMade()

            def connectionLost(self, reason: Any) -> None:
                proxy.connections.discard(self)
                super().connectionLost(reason)

        self.factory = portforward.ProxyFactory(host, port)
        self.factory.protocol = Server
        self.connections: set[Any] = set()
        self.listening: IListeningPort | None = None
        self.port = 0
        self.frozen = False

    def start(self) -> int:
        self.listening = reactor.listenTCP(self.port, self.factory, interface="127.0.0.1")
        self.port = self.listening.getHost().port
        return self.port

    async def cut(self) -> None:
        if self.listening is not None:
            await self.listening.stopListening()
            self.listening = None
        for conn in list(self.connections):
            conn.transport.abortConnection()
            if conn.peer is not None:
                conn.peer.transport.abortConnection()

    def freeze(self) -> None:
        self.frozen = True
        for conn in self.connections:
            for side in (conn, conn.peer):
                if side is not None:
                    side.transport.pauseProducing()

    def thaw(self) -> None:
        self.frozen = False
        for conn in self.connections:
            for side in (conn, conn.peer):
                if side is not None:
                    side.transport.resumeProducing()


def via(dsn: str, port: int, **extra: str) -> str:
    """``dsn`` pointed at 127.0.0.1:port (a TcpProxy), with extra libpq settings."""
    from psycopg2.extensions import make_dsn, parse_dsn

    params = {**parse_dsn(dsn), "host": "127.0.0.1", "port": str(port), **extra}
    return make_dsn(**params)


def pg_target(dsn: str) -> tuple[str, int]:
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(dsn)
    return params.get("host", "127.0.0.1"), int(params.get("port", "5432"))


async def until_ok(call: Callable[[], Awaitable[T]], within: float = 10.0) -> T:
    """``call()``'s result once it stops failing (a database coming back); fails after
    ``within`` seconds with the last error."""
    import time

    deadline = time.monotonic() + within
    while True:
        try:
            return await call()
        except Exception:
            if time.monotonic() > deadline:
                raise
            await wait(0.05)


Start = Callable[..., Awaitable[Server]]


@pytest_twisted.async_yield_fixture
async def start(store_url: str) -> AsyncIterator[Start]:
    """Start servers (with options) on one store of the backend under test."""
    store = make_store(store_url)
    await store.open()
    servers: list[Server] = []

    async def starter(**options: Any) -> Server:
        server = await Server.start(store, **options)
        servers.append(server)
        return server

    yield starter
    for server in servers:
        await server.stop()
    await store.close()


@pytest_twisted.async_yield_fixture
async def server(start: Start) -> AsyncIterator[Server]:
    """One server on the backend under test."""
    yield await start()


def error(response: Response, status: int) -> str:
    """The message of an API refusal, after checking its status and that the body is exactly
    ``{"error": message}`` with a message."""
    assert response.status == status, (response.status, response.body)
    body = response.json()
    assert set(body) == {"error"} and body["error"], body
    message: str = body["error"]
    return message
