"""Registry writes never make a count a client has read go back, and an upsert without the v1
hash keeps the hybrid's v1 swarm (in the store, the catalog, and what other processes are
told), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import random

import pytest_twisted
from registry_kit import make_store

from weightless.registry.entries import Entry
from weightless.registry.live import LiveRegistry
from weightless.tracker.catalog import Catalog, CatalogEntry
from weightless.tracker.swarm import SwarmStore

V2 = hashlib.sha256(b"mono").hexdigest()
V1 = hashlib.sha1(b"mono").hexdigest()


@pytest_twisted.ensureDeferred
async def test_an_upsert_without_v1_reports_the_stored_one(store_url: str) -> None:
    store = make_store(store_url)
    await store.open()
    try:
        await store.upsert(Entry(V2, "first", V1))
        again = Entry(V2, "renamed")
        await store.upsert(again)
        assert again.v1_info_hash == V1
        found = await store.entry(V1)
        assert found is not None and found.name == "renamed"
    finally:
        await store.close()


def test_upserts_never_lower_completions_nor_unlink_v1() -> None:
    catalog, swarms = Catalog(), SwarmStore(random.random)
    live = LiveRegistry(catalog, swarms)
    live.upserted(V2, V1, 0)
    catalog.entries[V2].completions = 2  # counted here, not flushed yet
    live.upserted(V2, V1, 0)  # the store answers 0: the flush has not happened
    assert live.completions(V2, 0) == 2
    assert bytes.fromhex(V1) in catalog.by_wire


def test_registering_a_hash_tracked_in_open_mode_keeps_its_completions() -> None:
    catalog, swarms = Catalog(), SwarmStore(random.random)
    live = LiveRegistry(catalog, swarms)
    key = bytes.fromhex(V2)[:20]
    swarm, *_ = swarms.put(key, b"\x0a\x00\x00\x01\x1a\xe1", b"p" * 20, True, 1)
    swarm.completions = 3  # counted while the hash was not registered
    live.upserted(V2, V1, 0)
    entry = catalog.entries[V2]
    assert isinstance(entry, CatalogEntry) and entry.completions == 3
    assert live.completions(V2, 0) == 3
