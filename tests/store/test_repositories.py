"""Repositories over real HTTP, once per backend (SQLite and PostgreSQL): `version` and
`created_at` on every entry (kept by upserts, restarts and the migration of an existing
database), the exact `name` and `version` search parameters, and the `magnet` of every entry."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from registry_kit import Server, error, make_store, make_torrent, raw_sql

from weightless.registry import postgres, sqlite
from weightless.registry.migrations import migrations
from weightless.registry.service import AmbiguousName, NotFound

V2 = hashlib.sha256(b"repo").hexdigest()
V1 = hashlib.sha1(b"repo").hexdigest()
FIRST = 1796677445.0  # 2026-12-07T21:04:05Z
FIRST_TEXT = "2026-12-07T21:04:05Z"


class Clock:
    """The store's clock: seconds that move only when told."""

    def __init__(self, now: float = FIRST) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Tracker:
    """A server on ``store_url`` that can be stopped and started again on the same database."""

    def __init__(self, store_url: str, clock: Clock) -> None:
        self.store_url = store_url
        self.clock = clock
        self.server: Server | None = None

    async def start(self, **options: Any) -> Server:
        store = make_store(self.store_url, clock=self.clock)
        await store.open()
        self.server = await Server.start(store, **options)
        return self.server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            await self.server.store.close()
            self.server = None


@pytest_twisted.async_yield_fixture
async def tracker(store_url: str) -> AsyncIterator[Tracker]:
    t = Tracker(store_url, Clock())
    yield t
    await t.stop()


async def entry(server: Server, info_hash: str) -> dict[str, Any]:
    r = await server.get("/api/registry", info_hash=info_hash)
    assert r.status == 200, r.body
    found: dict[str, Any] = r.json()
    return found


async def names(server: Server, **params: str) -> list[tuple[str, str | None]]:
    r = await server.get("/api/registry/search", **params)
    assert r.status == 200, r.body
    assert int(r.headers["x-total-count"]) == len(r.json())
    return [(e["name"], e.get("version")) for e in r.json()]


@pytest_twisted.ensureDeferred
async def test_version_and_created_at_survive_upserts_and_restarts(tracker: Tracker) -> None:
    server = await tracker.start()
    doc = {"info_hash": V2, "v1_info_hash": V1, "name": "llama", "publisher": "meta"}
    assert (await server.post_json({**doc, "version": "1.0"})).status == 201
    first = await entry(server, V2)
    assert (first["version"], first["created_at"]) == ("1.0", FIRST_TEXT)
    tracker.clock.now += 3600  # an hour later: an upsert changes the version, not the date
    assert (await server.post_json({**doc, "version": "1.0+fp16"})).status == 201
    second = await entry(server, V1)
    assert (second["version"], second["created_at"]) == ("1.0+fp16", FIRST_TEXT)
    await tracker.stop()
    server = await tracker.start()  # a restart on the same database
    again = await entry(server, V2)
    assert (again["version"], again["created_at"]) == ("1.0+fp16", FIRST_TEXT)
    # an upsert without a version leaves none (every written field is replaced, as the spec says)
    assert (await server.post_json(doc)).status == 201
    bare = await entry(server, V2)
    assert "version" not in bare and bare["created_at"] == FIRST_TEXT


@pytest_twisted.ensureDeferred
async def test_the_raw_upload_takes_a_version(tracker: Tracker, tmp_path: Path) -> None:
    server = await tracker.start()
    data = make_torrent(tmp_path, "weights.bin")
    r = await server.upload(data, version="v2.1-rc.1")
    assert r.status == 201, r.body
    found = await entry(server, r.json()["info_hash"])
    assert (found["version"], found["created_at"]) == ("v2.1-rc.1", FIRST_TEXT)
    for bad in ("", "a" * 65, "1 0", "v/1", "v@1", "ü", "1\x00"):
        if bad == "":
            continue  # an empty parameter is no version
        assert "version must be" in error(await server.upload(data, version=bad), 400)


@pytest.mark.parametrize("bad", ["a" * 65, "1.0 beta", "v/1", "v@1", "é", 7, True, [], ""])
@pytest_twisted.ensureDeferred
async def test_a_posted_version_must_be_a_label(tracker: Tracker, bad: object) -> None:
    server = await tracker.start()
    r = await server.post_json({"info_hash": V2, "name": "n", "version": bad})
    assert "version must be" in error(r, 400)
    assert (await server.get("/api/registry", info_hash=V2)).status == 404


@pytest_twisted.ensureDeferred
async def test_search_by_exact_name_and_version(tracker: Tracker) -> None:
    server = await tracker.start()
    rows = [
        ("llama", "meta", "1.0"),
        ("llama", "meta", "2.0"),
        ("llama", "someone", "2.0"),
        ("llama-2", "meta", "1.0"),
        ("Llama", "meta", None),
    ]
    for i, (name, publisher, version) in enumerate(rows):
        tracker.clock.now = FIRST + i
        doc = {
            "info_hash": hashlib.sha256(bytes([i])).hexdigest(),
            "name": name,
            "publisher": publisher,
        }
        if version:
            doc["version"] = version
        assert (await server.post_json(doc)).status == 201
    # name is exact (case and all), newest first; q stays the substring
    assert await names(server, name="llama") == [
        ("llama", "2.0"),
        ("llama", "2.0"),
        ("llama", "1.0"),
    ]
    assert len(await names(server, q="llama")) == 5
    assert await names(server, name="llama", publisher="meta") == [
        ("llama", "2.0"),
        ("llama", "1.0"),
    ]
    assert await names(server, name="llama", version="1.0") == [("llama", "1.0")]
    assert await names(server, version="1.0") == [("llama-2", "1.0"), ("llama", "1.0")]
    assert await names(server, name="lla") == []
    assert await names(server, version="9") == []
    assert "version must be" in error(await server.get("/api/registry/search", version="1 0"), 400)
    error(await server.get("/api/registry/search", name="a\x00"), 400)


@pytest_twisted.ensureDeferred
async def test_an_existing_database_is_migrated_and_its_rows_keep_their_dates(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database made before versions: its rows keep the time they were first registered."""

    def older(dialect: str) -> list[tuple[int, str]]:
        return [(v, text) for v, text in migrations(dialect) if v < 5]

    monkeypatch.setattr(sqlite, "migrations", older)
    monkeypatch.setattr(postgres, "migrations", older)
    store = make_store(store_url)
    await store.open()
    await store.close()
    raw_sql(
        store_url,
        "INSERT INTO registry (info_hash, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
        (V2, "old", FIRST, FIRST),
    )
    monkeypatch.undo()
    tracker = Tracker(store_url, Clock(FIRST + 86400))
    try:
        server = await tracker.start()
        old = await entry(server, V2)
        assert old["created_at"] == FIRST_TEXT and "version" not in old
        doc = {"info_hash": V2, "name": "old", "version": "1"}
        assert (await server.post_json(doc)).status == 201
        assert (await entry(server, V2))["created_at"] == FIRST_TEXT
        assert await names(server, name="old", version="1") == [("old", "1")]
    finally:
        await tracker.stop()


@pytest.mark.parametrize("kind", ["hybrid", "v1", "v2"])
@pytest_twisted.ensureDeferred
async def test_every_entry_carries_the_magnet_of_its_own_hashes(
    tracker: Tracker, tmp_path: Path, kind: str
) -> None:
    server = await tracker.start()
    r = await server.upload(make_torrent(tmp_path, "model.bin", version=kind))
    assert r.status == 201, r.body
    key, v1 = r.json()["info_hash"], r.json().get("v1_info_hash")
    xt = {
        "hybrid": f"xt=urn:btih:{v1}&xt=urn:btmh:1220{key}",
        "v1": f"xt=urn:btih:{key}",  # a v1-only entry: never btmh with a SHA-1
        "v2": f"xt=urn:btmh:1220{key}",
    }[kind]
    magnet = f"magnet:?{xt}&dn=model.bin&tr={server.announce_tr}"
    assert (await entry(server, key))["magnet"] == magnet
    found = (await server.get("/api/registry/search", name="model.bin")).json()
    assert [e["magnet"] for e in found] == [magnet]


@pytest_twisted.ensureDeferred
async def test_with_passkeys_the_magnet_names_no_tracker(tracker: Tracker) -> None:
    """Plain /announce is refused when TRACKER_SECRET is set: the link leaves tr out."""
    server = await tracker.start(secret=b"s3cret")
    assert (await server.post_json({"info_hash": V2, "v1_info_hash": V1, "name": "a b"})).status
    magnet = (await entry(server, V2))["magnet"]
    assert magnet == f"magnet:?xt=urn:btih:{V1}&xt=urn:btmh:1220{V2}&dn=a+b"


# -- the service's repository reads (what the pages and the command use)


@pytest_twisted.ensureDeferred
async def test_versions_newest_first_and_resolution(tracker: Tracker) -> None:
    server = await tracker.start()
    service = server.api.registry
    rows = [
        ("meta", "llama", "v1", "a"),
        ("meta", "llama", "v2", "b"),
        ("meta", "llama", None, "c"),  # newest, without a label
        ("someone", "llama", "v1", "d"),
        ("meta", "llama-2", "v1", "e"),
        (None, "meta/llama@v1", None, "f"),  # a whole name that looks like a reference
    ]
    hashes = {}
    for i, (publisher, name, version, seed) in enumerate(rows):
        tracker.clock.now = FIRST + 60 * i
        h = hashlib.sha256(seed.encode()).hexdigest()
        hashes[seed] = h
        doc: dict[str, Any] = {
            "info_hash": h,
            "v1_info_hash": hashlib.sha1(seed.encode()).hexdigest(),
            "name": name,
        }
        if publisher:
            doc["publisher"] = publisher
        if version:
            doc["version"] = version
        assert (await server.post_json(doc)).status == 201
    found = await service.versions("meta", "llama", ["http://t/announce"])
    assert [e["info_hash"] for e in found] == [hashes["c"], hashes["b"], hashes["a"]]
    assert all(e["magnet"].endswith("&tr=http%3A%2F%2Ft%2Fannounce") for e in found)
    assert await service.versions("meta", "nothing") == []

    async def resolved(what: str) -> str:
        entry = await service.resolve(what)
        return str(entry["info_hash"])

    assert await resolved("meta/llama") == hashes["c"]
    assert await resolved("meta/llama@v2") == hashes["b"]
    assert await resolved("someone/llama") == hashes["d"]
    assert await resolved(f"meta/llama@{hashes['a'][:8]}") == hashes["a"]
    v1_prefix = hashlib.sha1(b"b").hexdigest()[:10]
    assert await resolved(f"meta/llama@{v1_prefix}") == hashes["b"]
    assert await resolved("llama-2") == hashes["e"]
    assert await resolved("llama-2@v1") == hashes["e"]
    # the entry literally named "meta/llama@v1" (of no publisher) does not make meta's own
    # v1 ambiguous: the repository wins over whole names
    assert await resolved("meta/llama@v1") == hashes["a"]
    with pytest.raises(AmbiguousName, match="meta/llama, someone/llama"):
        await service.resolve("llama")
    assert await resolved("llama@v2") == hashes["b"]  # only meta has v2
    for missing in (
        "",
        "meta/llama@v9",
        "nobody/llama",
        "mistral",
        f"meta/llama@{hashes['d'][:8]}",
    ):
        with pytest.raises(NotFound):
            await service.resolve(missing)


@pytest_twisted.ensureDeferred
async def test_a_name_alone_is_not_taken_by_whoever_registered_the_most_lately(
    tracker: Tracker,
) -> None:
    # meta's llama, then 100 newer entries named llama by another publisher: the newest
    # hundred (one search's candidates) are all the rival's, but the name has two publishers
    server = await tracker.start()
    service = server.api.registry

    async def add(seed: str, publisher: str, at: float, version: str | None = None) -> str:
        tracker.clock.now = at
        h = hashlib.sha256(seed.encode()).hexdigest()
        doc = {"info_hash": h, "name": "llama", "publisher": publisher}
        if version is not None:
            doc["version"] = version
        assert (await server.post_json(doc)).status == 201
        return h

    legit = await add("meta", "meta", FIRST, "v1")
    for n in range(100):
        await add(f"rival{n}", "rival", FIRST + 60 + n)
    with pytest.raises(AmbiguousName, match="more than 100 registry entries are named 'llama'"):
        await service.resolve("llama")
    # beyond the candidates: never a rival's entry, and the error says where it looked
    with pytest.raises(NotFound, match=r"among the newest 100 entries .* give the whole info hash"):
        await service.resolve(f"llama@{legit[:8]}")
    with pytest.raises(NotFound, match=r"^no registry entry is named 'llama' at version 'v9'$"):
        await service.resolve("llama@v9")  # a label: its own search saw every one
    assert (await service.resolve("llama@v1"))["info_hash"] == legit  # a label's own search
    assert (await service.resolve("meta/llama"))["info_hash"] == legit
    # one publisher's 101 entries of a name: the newest, confirmed by a count
    await add("rival-last", "rival", FIRST + 600)
    await add("meta-gone", "meta", FIRST + 1)
    r = await server.request("DELETE", "/api/registry", info_hash=legit)
    assert r.status == 200, r.body
    r = await server.request(
        "DELETE", "/api/registry", info_hash=hashlib.sha256(b"meta-gone").hexdigest()
    )
    assert r.status == 200, r.body
    newest = hashlib.sha256(b"rival-last").hexdigest()
    assert (await service.resolve("llama"))["info_hash"] == newest
