"""The registry's rules without HTTP: `RegistryService` on an SQLite store in a temporary
folder (or, for the database's failures, a store that fails or never answers), with the live
catalog and swarms the tracker keeps, and its refusals as typed errors."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from registry_kit import make_torrent
from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.task import Clock

from weightless.registry.live import LiveRegistry
from weightless.registry.search import Search
from weightless.registry.service import (
    MAX_TRUSTED_KEYS,
    Conflict,
    Invalid,
    NotFound,
    RegistryService,
    Unauthorized,
    Unavailable,
    Unreadable,
)
from weightless.registry.sqlite import SQLiteStore
from weightless.registry.store import Blocked, StoreUnavailable
from weightless.registry.store import Conflict as StoreConflict
from weightless.torrent import signing
from weightless.torrent.metainfo import parse_torrent, sign_torrent
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.catalog import Catalog
from weightless.tracker.swarm import SwarmStore

V2 = hashlib.sha256(b"service").hexdigest()
V1 = hashlib.sha1(b"service").hexdigest()
OTHER = hashlib.sha256(b"other").hexdigest()
KEY = Ed25519PrivateKey.from_private_bytes(b"k" * 32)
SECOND = Ed25519PrivateKey.from_private_bytes(b"s" * 32)
PUB = signing.public_bytes(KEY).hex()
SECOND_PUB = signing.public_bytes(SECOND).hex()


class Registry:
    """A service on its own store, catalog and swarms; ``parsed`` names every function the
    service ran through its thread runner (here inline, on the test's thread)."""

    def __init__(self, store: Any, path: Path, registry_key: str | None = None) -> None:
        self.path = path
        self.store = store
        self.catalog = Catalog()
        self.swarms = SwarmStore(lambda: 0.5)
        self.live = LiveRegistry(self.catalog, self.swarms)
        self.pending = PendingWrites()
        self.clock = Clock()
        self.parsed: list[str] = []

        def run(fn: Callable[..., Any], *args: Any) -> Deferred[Any]:
            self.parsed.append(fn.__name__)
            return maybeDeferred(fn, *args)

        self.service = RegistryService(
            store, self.live, self.pending, self.clock, run, 5.0, registry_key
        )

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.close()


@pytest_twisted.async_yield_fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    path = tmp_path / "registry.db"
    store = SQLiteStore(str(path), reactor, clock=lambda: 1796677445.0)
    await store.open()
    yield Registry(store, path)
    await store.close()


def body(**fields: Any) -> bytes:
    return json.dumps({"info_hash": V2, "v1_info_hash": V1, "name": "Model", **fields}).encode()


def signed(key: Ed25519PrivateKey, v1: str | None, v2: str | None) -> dict[str, str]:
    s = signing.sign(key, bytes.fromhex(v1) if v1 else None, bytes.fromhex(v2) if v2 else None)
    return {"publisher_key": s.public_key_hex, "signature": s.signature_hex}


# -- writes and reads


@pytest_twisted.ensureDeferred
async def test_a_registered_entry_is_found_by_either_hash_with_live_counts(
    registry: Registry,
) -> None:
    service = registry.service
    entry = await service.register_json(body(publisher="org", size=10))
    assert (entry.info_hash, entry.v1_info_hash) == (V2, V1)
    assert registry.parsed == ["parse_json_body"]  # the body was parsed by the runner
    # the tracker knows the entry at once: peers on its v1 swarm count for it
    swarm_key = registry.catalog.entries[V2].swarm_key
    registry.swarms.put(swarm_key, b"\x01\x02\x03\x04\x1a\xe1", b"-XX0001-000000000001", True, 1)
    registry.swarms.put(swarm_key, b"\x01\x02\x03\x05\x1a\xe1", b"-XX0001-000000000002", False, 1)
    expected = {
        "info_hash": V2,
        "v1_info_hash": V1,
        "name": "Model",
        "verified": False,
        "completions": 0,
        "publisher": "org",
        "size": 10,
        "created_at": "2026-12-07T21:04:05Z",
        "magnet": f"magnet:?xt=urn:btih:{V1}&xt=urn:btmh:1220{V2}&dn=Model",
        "seeders": 1,
        "leechers": 1,
    }
    for h in (V2, V1, V2.upper(), V1.upper()):
        assert await service.get(h) == expected
    found, total = await service.search(Search(publisher="org"))
    assert (found, total) == ([expected], 1)
    assert await service.search(Search(publisher="nobody")) == ([], 0)


@pytest_twisted.ensureDeferred
async def test_get_refuses_bad_hashes_and_does_not_find_unknown_ones(registry: Registry) -> None:
    service = registry.service
    for bad in (None, "", "abc123", "zz" * 32):
        with pytest.raises(Invalid, match=r"info_hash"):
            await service.get(bad)
    for unknown in (V2, V1):
        with pytest.raises(NotFound, match=r"^info_hash not found$"):
            await service.get(unknown)


@pytest_twisted.ensureDeferred
async def test_a_later_submission_keeps_completions_the_mark_and_the_v1_hash(
    registry: Registry,
) -> None:
    service = registry.service
    await service.register_json(body(description="first"))
    registry.sql("UPDATE registry SET operator_verified = 1, completions = 7")
    await service.register_json(json.dumps({"info_hash": V2.upper(), "name": "Renamed"}).encode())
    entry = await service.get(V2)
    assert entry["verified"] is True and entry["completions"] == 7
    assert entry["name"] == "Renamed" and "description" not in entry
    assert entry["v1_info_hash"] == V1


@pytest_twisted.ensureDeferred
async def test_blocked_and_taken_hashes_are_conflicts(registry: Registry) -> None:
    service = registry.service
    await service.register_json(body())
    assert sorted(await service.delete(V1, "takedown")) == sorted([V2, V1])
    with pytest.raises(NotFound):
        await service.get(V2)
    for again in (body(), json.dumps({"info_hash": V1, "name": "x"}).encode()):
        with pytest.raises(Conflict, match=r"is blocked$"):
            await service.register_json(again)
    # the hash that is blocked is named, before anything is written
    fresh = hashlib.sha256(b"fresh").hexdigest()
    with pytest.raises(Conflict, match=rf"^{V1} is blocked$"):
        await service.register_json(body(info_hash=fresh))
    third = hashlib.sha1(b"third").hexdigest()
    await service.register_json(
        json.dumps({"info_hash": OTHER, "v1_info_hash": third, "name": "o"}).encode()
    )
    for taken in (third, OTHER[:40]):
        with pytest.raises(Conflict, match=rf"^{taken} already belongs to entry {OTHER}$"):
            await service.register_json(json.dumps({"info_hash": taken, "name": "x"}).encode())


@pytest_twisted.ensureDeferred
async def test_deleting_an_unknown_hash_blocks_it_and_drops_its_peers(registry: Registry) -> None:
    service = registry.service
    key = bytes.fromhex(V1)
    registry.swarms.put(key, b"\x01\x02\x03\x04\x1a\xe1", b"-XX0001-000000000001", True, 1)
    assert await service.delete(V1.upper(), "") == [V1]
    assert registry.swarms.get(key) is None and key in registry.catalog.blocked
    with pytest.raises(Invalid, match=r"reason"):
        await service.delete(V2, "nul\x00")
    with pytest.raises(Invalid, match=r"info_hash is required"):
        await service.delete(None, "")


@pytest_twisted.ensureDeferred
async def test_upload_takes_hashes_name_and_size_from_the_file(
    registry: Registry, tmp_path: Path
) -> None:
    service = registry.service
    data = make_torrent(tmp_path, "weights.bin")
    info = parse_torrent(data)
    entry = await service.register_upload(data, {"category": "models"})
    assert registry.parsed == ["parse_upload"]
    assert (entry.info_hash, entry.v1_info_hash) == (info.info_hash_hex, info.v1_info_hash_hex)
    found = await service.get(info.v1_info_hash_hex)
    assert found["name"] == "weights.bin" and found["size"] == info.total_size
    assert found["category"] == "models"
    assert await service.torrent(info.info_hash_hex) == ("weights.bin", data)
    with pytest.raises(Invalid, match=r"the body must be a .torrent file"):
        await service.register_upload(b"", {})
    with pytest.raises(Invalid, match=r"invalid torrent"):
        await service.register_upload(b"not bencode", {})
    with pytest.raises(Invalid, match=r"size"):
        await service.register_upload(data, {"size": "-1"})


@pytest_twisted.ensureDeferred
async def test_the_stored_file_and_its_meta(registry: Registry, tmp_path: Path) -> None:
    service = registry.service
    await service.register_json(body())
    for missing in (service.torrent, service.metadata):
        with pytest.raises(NotFound, match=r"^no torrent file stored for this info_hash$"):
            await missing(V2)
    data = make_torrent(tmp_path, "w.bin")
    info = parse_torrent(data)
    await service.register_upload(data, {})
    registry.parsed.clear()
    for h in (info.info_hash_hex, info.v1_info_hash_hex):
        assert json.loads(await service.metadata(h)) == info.meta()
    assert registry.parsed == []  # kept with the file: nothing parsed again
    # a file stored without its view gets it once, from the runner, and keeps it
    registry.sql("UPDATE registry SET meta = NULL")
    assert json.loads(await service.metadata(info.info_hash_hex)) == info.meta()
    assert json.loads(await service.metadata(info.info_hash_hex)) == info.meta()
    assert registry.parsed == ["stored_meta"]
    # a stored file that no longer parses is the registry's fault, said as such
    registry.sql("UPDATE registry SET meta = NULL, torrent_data = ?", (b"garbage",))
    with pytest.raises(Unreadable, match=r"^the stored torrent cannot be read: "):
        await service.metadata(info.info_hash_hex)


# -- the registry key


@pytest_twisted.ensureDeferred
async def test_writes_need_the_key_once_one_is_set(registry: Registry, tmp_path: Path) -> None:
    registry.service.authorize(None)  # no key set: anyone may write
    keyed = Registry(registry.store, registry.path, registry_key="sécret").service
    for wrong in (None, b"", b"secret", "sécret".encode("latin-1")):
        with pytest.raises(Unauthorized, match=r"^missing or wrong registry key$"):
            keyed.authorize(wrong)
    keyed.authorize("sécret".encode())


# -- signatures, trusted keys and the operator's mark


@pytest_twisted.ensureDeferred
async def test_signatures_are_checked_against_every_hash(registry: Registry) -> None:
    service = registry.service
    entry = await service.register_json(body(**signed(KEY, V1, V2)))
    assert (entry.publisher_key, entry.signature) == (PUB, signed(KEY, V1, V2)["signature"])
    # a later post of the v2 hash alone keeps the stored v1 hash, which the signature covers
    with pytest.raises(Invalid, match=r"^signature refused"):
        await service.register_json(
            json.dumps({"info_hash": V2, "name": "M", **signed(KEY, None, V2)}).encode()
        )
    await service.register_json(
        json.dumps({"info_hash": V2, "name": "M", **signed(KEY, V1, V2)}).encode()
    )
    # a forged one changes nothing
    with pytest.raises(Invalid, match=r"^signature refused"):
        await service.register_json(body(name="Forged", **signed(KEY, V1, OTHER)))
    assert (await service.get(V2))["name"] == "M"
    with pytest.raises(Invalid, match=r"give both or neither"):
        await service.register_json(body(publisher_key=PUB))


@pytest_twisted.ensureDeferred
async def test_trust_verifies_a_publishers_signed_entries(registry: Registry) -> None:
    service = registry.service
    await service.register_json(body(publisher="org", **signed(KEY, V1, V2)))
    assert (await service.get(V2))["verified"] is False
    keys = await service.trust("org", json.dumps({"keys": [PUB.upper(), SECOND_PUB, PUB]}).encode())
    assert keys == sorted([PUB, SECOND_PUB]) == await service.publisher_keys("org")
    assert (await service.get(V2))["verified"] is True
    assert await service.search(Search(verified=True)) == ([await service.get(V2)], 1)
    assert await service.trust("org", b'{"keys": []}') == []
    assert (await service.get(V2))["verified"] is False
    assert await service.publisher_keys("nobody") == []


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        (b"{", "invalid JSON body"),
        (b"[]", "the body must be"),
        (b'{"keys": "x"}', "the body must be"),
        (json.dumps({"keys": [PUB] * (MAX_TRUSTED_KEYS + 1)}).encode(), "at most 100 keys"),
        (b'{"keys": ["abc"]}', r"keys\[0\] must be 64 hex"),
        (b'{"keys": [1]}', r"keys\[0\] must be 64 hex"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_trust_refuses_what_is_not_a_list_of_keys(
    registry: Registry, sent: bytes, message: str
) -> None:
    with pytest.raises(Invalid, match=message):
        await registry.service.trust("org", sent)
    with pytest.raises(Invalid, match=r"publisher must not contain NUL"):
        await registry.service.trust("o\x00rg", sent)  # the name is checked first


@pytest_twisted.ensureDeferred
async def test_of_a_files_signatures_the_trusted_one_is_chosen(
    registry: Registry, tmp_path: Path
) -> None:
    service = registry.service
    data = sign_torrent(sign_torrent(make_torrent(tmp_path, "w.bin"), SECOND), KEY)
    info = parse_torrent(data)
    assert (await service.register_upload(data, {"publisher": "org"})).publisher_key == SECOND_PUB
    await service.trust("org", json.dumps({"keys": [PUB]}).encode())
    entry = await service.register_upload(data, {"publisher": "org"})
    assert entry.publisher_key == PUB
    assert (await service.get(info.info_hash_hex))["verified"] is True


@pytest_twisted.ensureDeferred
async def test_the_operators_mark(registry: Registry) -> None:
    service = registry.service
    await service.register_json(body())
    assert (await service.mark(V1, "true"))["verified"] is True
    assert (await service.get(V2))["verified"] is True
    assert (await service.mark(V2, "0"))["verified"] is False
    for bad in (None, "", "yes"):
        with pytest.raises(Invalid, match=r"^verified must be true or false$"):
            await service.mark(V2, bad)
    with pytest.raises(NotFound, match=r"^info_hash not found$"):
        await service.mark(OTHER, "true")
    with pytest.raises(Invalid, match=r"info_hash"):
        await service.mark("nope", "maybe")  # the hash is checked first


# -- users


@pytest_twisted.ensureDeferred
async def test_user_traffic_adds_what_is_not_written_yet(registry: Registry) -> None:
    service = registry.service
    for unknown in ("bob", "b ob", ""):
        with pytest.raises(NotFound, match=r"^unknown user$"):
            await service.user(unknown)
    registry.pending.traffic["alice"] = [300, 50]
    assert await service.user("alice") == (300, 50)
    await registry.store.flush(registry.pending.take())
    assert await service.user("alice") == (300, 50)
    registry.pending.traffic["alice"] = [1, 0]
    assert await service.user("alice") == (301, 50)


# -- the database's failures


class Failing:
    """A store whose every query fails with ``error``, or (None) never answers."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.waiting: list[Deferred[Any]] = []

    def __getattr__(self, name: str) -> Callable[..., Deferred[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)

        def query(*args: Any, **kwargs: Any) -> Deferred[Any]:
            if self.error is not None:
                return fail(self.error)
            d: Deferred[Any] = Deferred()
            self.waiting.append(d)
            return d

        return query


@pytest_twisted.ensureDeferred
async def test_a_database_that_does_not_answer_in_time_is_unavailable(tmp_path: Path) -> None:
    store = Failing(None)
    registry = Registry(store, tmp_path / "unused.db")
    d = Deferred.fromCoroutine(registry.service.get(V2))
    registry.clock.advance(4.9)
    assert not d.called
    registry.clock.advance(0.1)
    with pytest.raises(Unavailable):
        await d
    assert store.waiting[0].called  # the query was given up (cancelled), not left waiting


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (StoreUnavailable("connection refused"), Unavailable, "^connection refused$"),
        (Blocked(V2), Conflict, f"^{V2} is blocked$"),
        (StoreConflict("UNIQUE failed"), Conflict, "^a hash of this entry belongs to another$"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_the_stores_refusals_become_the_registrys(
    tmp_path: Path, error: Exception, kind: type[Exception], message: str
) -> None:
    registry = Registry(Failing(error), tmp_path / "unused.db")
    with pytest.raises(kind, match=message):
        await registry.service.register_json(body())
    if kind is Unavailable:
        with pytest.raises(Unavailable):
            await registry.service.search(Search())
