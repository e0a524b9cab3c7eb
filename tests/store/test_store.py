"""The store seam, once per backend: the same calls give the same answers on SQLite and
PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
import pytest_twisted
from registry_kit import make_store, raw_sql

from weightless.registry.entries import Entry
from weightless.registry.migrations import migrations
from weightless.registry.search import Search
from weightless.registry.store import Blocked, Conflict, IStore
from weightless.tracker.accounting import PendingWrites

V2 = hashlib.sha256(b"store").hexdigest()
V1 = hashlib.sha1(b"store").hexdigest()
OTHER = hashlib.sha256(b"other").hexdigest()


@pytest_twisted.async_yield_fixture
async def store(store_url: str) -> AsyncIterator[IStore]:
    store = make_store(store_url)
    await store.open()
    yield store
    await store.close()


@pytest_twisted.ensureDeferred
async def test_migrations_apply_once(store: IStore, store_url: str) -> None:
    await store.upsert(Entry(V2, "kept"))
    again = make_store(store_url)
    await again.open()  # a restart, or a second process: nothing to apply, nothing lost
    try:
        assert (await again.entry(V2)) is not None
    finally:
        await again.close()
    versions = raw_sql(store_url, "SELECT version FROM schema_migrations ORDER BY version")
    dialect = "sqlite" if store_url.startswith("sqlite") else "postgresql"
    assert versions == [(v,) for v, _ in migrations(dialect)]
    assert {(1,), (2,), (3,), (4,)} <= set(versions)


@pytest_twisted.ensureDeferred
async def test_upsert_and_read_back(store: IStore) -> None:
    entry = Entry(V2, "n", V1, description="d", size=2**62, tags="a,b")
    assert await store.upsert(entry, b"torrent bytes") == 0
    assert await store.entry(V2) == entry
    assert await store.entry(V1) == entry
    assert await store.entry(OTHER) is None
    assert await store.torrent(V1) == ("n", b"torrent bytes")
    await store.upsert(Entry(V2, "renamed"))  # no file, no v1 hash: both kept
    assert await store.torrent(V2) == ("renamed", b"torrent bytes")
    found = await store.entry(V2)
    assert found is not None and found.v1_info_hash == V1 and found.description is None


@pytest_twisted.ensureDeferred
async def test_a_v1_hash_belongs_to_one_entry(store: IStore) -> None:
    await store.upsert(Entry(V2, "first", V1))
    with pytest.raises(Conflict):
        await store.upsert(Entry(OTHER, "second", V1))
    assert await store.entry(OTHER) is None


@pytest_twisted.ensureDeferred
async def test_a_hash_keys_one_entry_in_either_column(store: IStore) -> None:
    # what another worker or machine may write before this one's catalog knows of it: the
    # store itself refuses a second entry of a hash that another entry has in the other column
    await store.upsert(Entry(V2, "hybrid", V1, publisher="bob"))
    with pytest.raises(Conflict):
        await store.upsert(Entry(V1, "v1 only", publisher="alice"))  # the hybrid's v1 hash
    found = await store.entry(V1)
    assert found is not None and found.info_hash == V2 and found.publisher == "bob"
    lone = hashlib.sha1(b"lone").hexdigest()
    await store.upsert(Entry(lone, "v1 only", publisher="bob"))
    with pytest.raises(Conflict):
        await store.upsert(Entry(OTHER, "hybrid", lone, publisher="alice"))  # its v1 is taken
    assert await store.entry(OTHER) is None
    found = await store.entry(lone)
    assert found is not None and found.info_hash == lone and found.publisher == "bob"
    # an entry's own rewrite is no conflict
    await store.upsert(Entry(V2, "hybrid", V1, publisher="bob", version="v2"))
    await store.upsert(Entry(lone, "v1 only", publisher="bob", version="v2"))


@pytest_twisted.ensureDeferred
async def test_the_store_itself_refuses_a_blocked_hash(store: IStore) -> None:
    """Whatever raced past the API's in-memory check (a takedown made meanwhile, here or on
    another machine), a blocked hash is never stored."""
    await store.takedown(V1, "dmca")
    with pytest.raises(Blocked):
        await store.upsert(Entry(V2, "hybrid", V1))  # blocked by its v1 hash
    await store.takedown(V2[:40], "truncated v2 form")
    with pytest.raises(Blocked):
        await store.upsert(Entry(V2, "v2 only"))  # blocked by its wire form
    assert await store.entry(V2) is None
    await store.upsert(Entry(OTHER, "fine"))
    assert await store.entry(OTHER) is not None


@pytest_twisted.ensureDeferred
async def test_takedown(store: IStore, store_url: str) -> None:
    await store.upsert(Entry(V2, "n", V1))
    assert sorted(await store.takedown(V1, "dmca")) == sorted([V1, V2])
    assert await store.entry(V2) is None
    assert await store.takedown(OTHER, "") == [OTHER]
    assert await store.takedown(OTHER, "again") == [OTHER]
    snapshot = await store.snapshot()
    assert snapshot.entries == [] and sorted(snapshot.blocked) == sorted([V1, V2, OTHER])
    reasons = dict(raw_sql(store_url, "SELECT info_hash, reason FROM blocklist"))
    assert reasons == {V1: "dmca", V2: "dmca", OTHER: "again"}


@pytest_twisted.ensureDeferred
async def test_flush_and_users(store: IStore) -> None:
    await store.upsert(Entry(V2, "n", V1))
    pending = PendingWrites()
    pending.complete(V2)
    pending.complete(V2)
    pending.complete(OTHER)  # gone meanwhile: ignored
    pending.transfer("alice", 10, 20)
    pending.transfer("bob", 0, 5)
    await store.flush(pending)
    await store.flush(pending)
    found = await store.entry(V2)
    assert found is not None and found.completions == 4
    assert await store.user("alice") == (20, 40)
    assert await store.user("bob") == (0, 10)
    assert await store.user("carol") is None
    assert await store.upsert(Entry(V2, "again")) == 4  # an upsert keeps completions
    snapshot = await store.snapshot()
    assert [(e.info_hash, e.v1_info_hash, e.completions) for e in snapshot.entries] == [(V2, V1, 4)]


@pytest_twisted.ensureDeferred
async def test_save_counts(store: IStore) -> None:
    hashes = [hashlib.sha256(b"%d" % i).hexdigest() for i in range(4)]
    for i, h in enumerate(hashes):
        await store.upsert(Entry(h, f"e{i}"))
    await store.save_counts({hashes[0]: (1, 0), hashes[1]: (5, 2), hashes[2]: (3, 9)}, reset=True)
    found, _ = await store.search(Search(sort="seeders"))
    assert [e.name for e in found[:3]] == ["e1", "e2", "e0"]
    await store.save_counts({hashes[3]: (2, 0)}, reset=True)  # everything else back to 0
    found, _ = await store.search(Search(sort="seeders", limit=1))
    assert found[0].name == "e3"
    await store.save_counts({hashes[0]: (7, 0)}, reset=False)  # the rest keeps its counts
    found, _ = await store.search(Search(sort="seeders", limit=2))
    assert [e.name for e in found] == ["e0", "e3"]


@pytest_twisted.ensureDeferred
async def test_search_on_the_store(store: IStore) -> None:
    await store.upsert(Entry(V2, "100% Pure_Data", category="datasets", tags="Mixed,CASE"))
    await store.upsert(Entry(OTHER, "100 PureXData", category="datasets", tags="mixed"))
    assert (await store.search(Search(q="0% pure_")))[1] == 1
    assert (await store.search(Search(q="PURE")))[1] == 2
    assert (await store.search(Search(tags="case")))[1] == 1
    assert (await store.search(Search(category="datasets", limit=1, offset=1)))[1] == 2
    page, total = await store.search(Search(category="datasets", limit=1, offset=1))
    assert total == 2 and [e.name for e in page] == ["100% Pure_Data"]  # older second
