"""The registry as the tracker sees it (weightless.registry.live) with a real Catalog and
SwarmStore and a fake store: live counts attached to entries (each peer once, whichever hash
it announced), writes and takedowns reaching the catalog and swarms, the periodic copy of
counts into the store, and the change feed."""

from __future__ import annotations

import hashlib
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

from weightless.registry import live as live_module
from weightless.registry.live import ChangeFeed, CountsPublisher, LiveRegistry
from weightless.registry.store import Snapshot, StoreUnavailable
from weightless.tracker.catalog import Catalog, CatalogEntry
from weightless.tracker.swarm import SwarmStore

V2 = hashlib.sha256(b"hybrid").hexdigest()
V1 = hashlib.sha1(b"hybrid").hexdigest()
SOLO = hashlib.sha256(b"v2 only").hexdigest()
OLD = hashlib.sha1(b"v1 only").hexdigest()


def key(info_hash: str) -> bytes:
    return bytes.fromhex(info_hash)[:20]


def live() -> LiveRegistry:
    return LiveRegistry(Catalog(), SwarmStore(lambda: 0.5))


def peer(registry: LiveRegistry, swarm: bytes, n: int, seeding: bool, other: bool = False) -> None:
    registry.swarms.put(swarm, bytes([10, 0, 0, n, 0x1A, 0xE1]), b"%020d" % n, seeding, 1, other)


# -- counts attached to entries


def test_a_hybrid_entry_counts_each_peer_once_whichever_hash_it_used() -> None:
    registry = live()
    registry.upserted(V2, V1, 0)
    peer(registry, key(V2), 1, True)  # announced the v2 hash
    peer(registry, key(V2), 1, True, other=True)  # the same peer, under the v1 hash too
    peer(registry, key(V2), 2, False, other=True)  # a v1-only client
    assert registry.counts(V2) == (1, 1)
    assert registry.all_counts() == {V2: (1, 1)}


def test_counts_per_entry_and_unregistered_swarms_left_out() -> None:
    registry = live()
    registry.upserted(SOLO, None, 0)
    registry.upserted(OLD, None, 0)
    for n in range(3):
        peer(registry, key(SOLO), n, n == 0)
    peer(registry, key(OLD), 7, True)
    peer(registry, key(hashlib.sha256(b"open").hexdigest()), 9, True)  # --open, no entry
    assert registry.all_counts() == {SOLO: (1, 2), OLD: (1, 0)}
    assert registry.counts(OLD) == (1, 0)
    assert registry.counts(V2) == (0, 0)  # not registered
    registry.upserted(V2, V1, 0)
    assert registry.counts(V2) == (0, 0)  # registered, no peers yet


def test_counts_in_skips_a_swarm_under_an_entrys_other_hash() -> None:
    """Peers that announced the v1 hash before the entry was registered sit in a swarm of
    their own; the entry's counts are its swarm key's."""
    registry = live()
    peer(registry, key(V1), 1, True)
    registry.upserted(V2, V1, 0)
    assert registry.counts_in([bytes.fromhex(V1)]) == {}
    assert registry.counts_in([key(V2), b"\0" * 20]) == {}  # no swarm yet, unknown swarm
    peer(registry, key(V2), 2, False)
    assert registry.counts_in([key(V2)]) == {V2: (0, 1)}


def test_completions_never_go_back() -> None:
    registry = live()
    registry.upserted(V2, V1, 4)
    assert registry.completions(V2, 2) == 4  # counted here, not stored yet
    assert registry.completions(V2, 6) == 6
    assert registry.completions(SOLO, 3) == 3  # unknown here: the store's
    registry.upserted(V2, V1, 1)  # an edit written with an older count
    assert registry.catalog.entries[V2].completions == 4


def test_a_swarm_tracked_before_registration_brings_its_completions() -> None:
    registry = live()
    peer(registry, key(SOLO), 1, True)
    swarm = registry.swarms.get(key(SOLO))
    assert swarm is not None
    swarm.completions = 9
    registry.upserted(SOLO, None, 2)
    assert registry.catalog.entries[SOLO].completions == 9
    registry.upserted(OLD, None, 3)  # no swarm: the count written
    assert registry.catalog.entries[OLD].completions == 3


# -- writes reaching the catalog


def test_an_upsert_makes_every_hash_of_the_entry_known() -> None:
    registry = live()
    registry.upserted(V2, V1, 0)
    assert registry.catalog.lookup(V1) is registry.catalog.entries[V2]
    assert registry.catalog.by_wire[bytes.fromhex(V1)][0] == key(V2)


def test_a_takedown_of_an_unregistered_hash_still_drops_and_blocks_it() -> None:
    registry = live()
    peer(registry, key(SOLO), 1, True)
    registry.upserted(OLD, None, 0)
    registry.taken_down([SOLO])
    assert registry.swarms.get(key(SOLO)) is None and registry.swarms.peer_count == 0
    assert key(SOLO) in registry.catalog.blocked
    assert OLD in registry.catalog.entries  # others untouched


def test_a_takedown_by_the_v1_hash_removes_the_hybrid_entry() -> None:
    registry = live()
    registry.upserted(V2, V1, 0)
    peer(registry, key(V2), 1, True)
    registry.taken_down([V1])
    assert registry.catalog.entries == {} and registry.swarms.swarms == {}
    assert registry.catalog.blocked == {bytes.fromhex(V1)}


def test_resync_unblocks_what_is_no_longer_blocked_and_follows_a_new_v1_hash() -> None:
    registry = live()
    registry.upserted(V2, V1, 3)
    registry.taken_down([OLD, SOLO])
    new_v1 = hashlib.sha1(b"re-hashed").hexdigest()
    registry.resync(Snapshot([CatalogEntry(V2, new_v1, 1)], [SOLO]))
    assert registry.catalog.blocked == {key(SOLO)}
    assert registry.catalog.lookup(new_v1) is registry.catalog.entries[V2]
    assert registry.catalog.lookup(V1) is None


# -- the copy of counts into the store


class FakeStore:
    def __init__(self) -> None:
        self.saved: list[tuple[dict[str, tuple[int, int]], bool]] = []
        self.down = False
        self.hold: Deferred[None] | None = None
        self.watching: list[Any] = []

    def save_counts(self, counts: dict[str, tuple[int, int]], reset: bool) -> Deferred[None]:
        if self.down:
            return fail(StoreUnavailable("database down"))
        self.saved.append((dict(counts), reset))
        return self.hold if self.hold is not None else succeed(None)

    def watch(self, listener: Any) -> None:
        self.watching.append(listener)


def test_with_several_workers_only_owned_entries_are_written_and_nothing_reset() -> None:
    registry = live()
    for h in (V2, SOLO, OLD):
        registry.upserted(h, None if h != V2 else V1, 0)
    peer(registry, key(SOLO), 1, True)
    store = FakeStore()
    publisher = CountsPublisher(registry, store, Clock(), owned=lambda: [V2, SOLO])  # type: ignore[arg-type]
    publisher.publish()
    assert store.saved == [({SOLO: (1, 0), V2: (0, 0)}, False)]
    for _ in range(3):
        publisher.publish()
    assert all(set(counts) <= {V2, SOLO} and not reset for counts, reset in store.saved)
    assert all(counts[V2] == (0, 0) for counts, _ in store.saved if V2 in counts)
    settled = len(store.saved)
    publisher.publish()
    assert len(store.saved) == settled  # nothing changed: nothing written


def test_an_entry_whose_peers_left_is_written_as_zero_once() -> None:
    registry = live()
    registry.upserted(SOLO, None, 0)
    peer(registry, key(SOLO), 1, False)
    store = FakeStore()
    publisher = CountsPublisher(registry, store, Clock())  # type: ignore[arg-type]
    publisher.publish()
    registry.swarms.drop(key(SOLO))
    publisher.publish()
    publisher.publish()
    assert store.saved == [({SOLO: (0, 1)}, True), ({SOLO: (0, 0)}, False)]


def test_a_failed_write_is_logged_and_everything_written_again() -> None:
    registry = live()
    registry.upserted(SOLO, None, 0)
    peer(registry, key(SOLO), 1, True)
    store = FakeStore()
    publisher = CountsPublisher(registry, store, Clock())  # type: ignore[arg-type]
    store.down = True
    done: list[Any] = []
    publisher.publish().addBoth(done.append)
    assert done == [None]  # the failure does not escape to the loop
    assert publisher.written is None
    store.down = False
    publisher.publish()
    assert store.saved == [({SOLO: (1, 0)}, True)]


def test_one_write_at_a_time() -> None:
    registry = live()
    registry.upserted(SOLO, None, 0)
    store = FakeStore()
    store.hold = Deferred()
    publisher = CountsPublisher(registry, store, Clock())  # type: ignore[arg-type]
    first = publisher.publish()
    peer(registry, key(SOLO), 1, True)
    second: list[Any] = []
    publisher.publish().addBoth(second.append)
    assert second == [None] and len(store.saved) == 1  # skipped, not queued
    store.hold.callback(None)
    assert first.called
    store.hold = None
    publisher.publish()
    assert store.saved[-1] == ({SOLO: (1, 0)}, False)


def test_the_service_writes_at_once_then_every_few_seconds() -> None:
    registry = live()
    registry.upserted(SOLO, None, 0)
    store = FakeStore()
    clock = Clock()
    service = CountsPublisher(registry, store, clock, every=2.0)  # type: ignore[arg-type]
    service.startService()
    assert store.saved == [({}, True)]
    peer(registry, key(SOLO), 1, True)
    clock.advance(1.9)
    assert len(store.saved) == 1
    clock.advance(0.1)
    assert store.saved[-1] == ({SOLO: (1, 0)}, False)
    service.stopService()
    peer(registry, key(SOLO), 2, True)
    clock.advance(10)
    assert len(store.saved) == 2
    assert service.stopService() is None  # twice is harmless


def test_default_period() -> None:
    assert CountsPublisher(live(), FakeStore(), Clock()).every == live_module.COUNTS_EVERY  # type: ignore[arg-type]


# -- the change feed


def test_the_change_feed_follows_the_store_once_started() -> None:
    registry = live()
    store = FakeStore()
    feed = ChangeFeed(store, registry)  # type: ignore[arg-type]
    assert store.watching == []
    feed.startService()
    (listener,) = store.watching
    assert listener is registry
    listener.upserted(V2, V1, 2)  # another process wrote it
    listener.taken_down([SOLO])
    assert registry.catalog.entries[V2].completions == 2
    assert key(SOLO) in registry.catalog.blocked
