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
from weightless.registry.search import parse_search
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


@pytest_twisted.ensureDeferred
async def test_a_read_at_any_worker_shows_what_the_owner_counted_and_has_not_written(
    store_url: str,
) -> None:
    """Two workers on one store (their meshes joined in memory): the owner of a swarm counts
    a completion and a new seeder that are not in the store yet; a registry read at the other
    worker, a moment later, shows them, not the store's older count."""
    from twisted.internet import reactor
    from twisted.internet.task import LoopingCall
    from twisted.internet.testing import MemoryReactorClock
    from unit.cluster.kit import link

    from weightless.cluster.ipc import Mesh
    from weightless.cluster.owner import owner_of
    from weightless.cluster.router import Router
    from weightless.cluster.worker import ClusterLive
    from weightless.registry.service import RegistryService
    from weightless.tracker.accounting import PendingWrites
    from weightless.tracker.core import Policy, Tracker

    store = make_store(store_url)
    await store.open()
    stamps = iter(range(1, 1_000_000))
    services, lives = [], []
    for index in range(2):
        catalog, swarms = Catalog(), SwarmStore(random.random)
        pending = PendingWrites()
        tracker = Tracker(Policy(), catalog, swarms, pending, None, None, random.random)
        router = Router(Mesh(index, 2, "/nowhere", MemoryReactorClock()), tracker)
        live = ClusterLive(catalog, swarms, router, False, reactor, stamps.__next__)
        router.live_of = live.live_of
        lives.append(live)
        services.append(RegistryService(store, live, pending, reactor, lambda f, *a: f(*a)))
    pump = link(lives[0].router.mesh, lives[1].router.mesh)
    pumping = LoopingCall(pump.flush)
    pumping.start(0.001)
    try:
        await store.upsert(Entry(V2, "mono", V1))
        for live in lives:
            LiveRegistry.upserted(live, V2, V1, 0)  # as loaded from the store at start
        key = bytes.fromhex(V2)[:20]
        owner = owner_of(key, 2)
        counted = lives[owner]
        counted.catalog.entries[V2].completions = 1  # a completed announce, not flushed
        counted.swarms.put(key, b"\x0a\x00\x00\x01\x1a\xe1", b"p" * 20, True, 1)
        at_owner = await services[owner].get(V2)
        elsewhere = await services[1 - owner].get(V2)
        assert (at_owner["completions"], at_owner["seeders"]) == (1, 1)
        assert (elsewhere["completions"], elsewhere["seeders"]) == (1, 1)
        [found], _ = await services[1 - owner].search(parse_search({}))
        assert (found["completions"], found["seeders"]) == (1, 1)
    finally:
        pumping.stop()
        await store.close()
