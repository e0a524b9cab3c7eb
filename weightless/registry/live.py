"""The registry as the tracker sees it: registry writes applied to the in-memory catalog and
swarms (this process's at once, other processes' through the store's change feed), live
counts per entry, and their periodic copy into the store for sort=seeders."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from zope.interface import implementer

from weightless.registry.store import IRegistryListener, IStore, Snapshot
from weightless.tracker.catalog import Catalog, CatalogEntry, wire_hashes
from weightless.tracker.swarm import SwarmStore

COUNTS_EVERY = 2.0  # seconds: how stale sort=seeders may be
COUNTS_SLICE = 1_000  # swarms counted per reactor turn: 1 to 2 ms


@implementer(IRegistryListener)
class LiveRegistry:
    log = Logger()

    def __init__(self, catalog: Catalog, swarms: SwarmStore) -> None:
        self.catalog = catalog
        self.swarms = swarms

    def upserted(self, info_hash: str, v1_info_hash: str | None, completions: int) -> None:
        """An entry written here or elsewhere. Completions never go back: the catalog keeps
        the larger count, and a swarm tracked before its hash was registered (--open) brings
        the completions it counted."""
        entry = CatalogEntry(info_hash, v1_info_hash, completions)
        if info_hash not in self.catalog.entries:
            swarm = self.swarms.get(entry.swarm_key)
            if swarm is not None:
                entry.completions = max(completions, swarm.completions)
        self.catalog.add(entry)

    def taken_down(self, hashes: list[str]) -> None:
        """Forget the entry, drop the peers of every swarm its hashes name, block them all."""
        doomed: set[bytes] = set()
        for h in hashes:
            entry = self.catalog.lookup(h)
            if entry is not None:
                self.catalog.remove(entry)
                doomed.update(entry.wire_hashes())
            doomed.update(wire_hashes(h))
        for key in doomed:
            self.swarms.drop(key)
        self.catalog.block(hashes)

    def resync(self, snapshot: Snapshot) -> None:
        """Make the catalog match the store (after missed notifications), keeping the
        completions counted here since."""
        blocked = set(snapshot.blocked)
        known = {entry.info_hash for entry in snapshot.entries}
        # an entry missing here may be one this process wrote a moment after the snapshot was
        # read: forget it without touching its peers (its notification adds it back); a real
        # takedown also blocks the hashes, which drops the peers below
        for gone in [e for h, e in self.catalog.entries.items() if h not in known]:
            self.catalog.remove(gone)
        if blocked:
            self.taken_down(sorted(blocked))
        for entry in snapshot.entries:
            old = self.catalog.entries.get(entry.info_hash)
            if old is None or old.v1_info_hash != entry.v1_info_hash:
                self.catalog.add(entry)
            else:
                old.completions = max(old.completions, entry.completions)
        still = _prefixes(blocked)  # once: not per blocked hash
        self.catalog.unblock(h for h in {b.hex() for b in self.catalog.blocked} if h not in still)
        self.log.info(
            "registry resynchronized: {n} entries, {b} blocked hashes",
            n=len(self.catalog.entries),
            b=len(blocked),
        )

    def fresh(self, info_hashes: Iterable[str]) -> Deferred[None]:
        """Fires when `counts` and `completions` of these entries are as of now (at once in
        one process: every swarm is here)."""
        return succeed(None)

    def counts(self, info_hash: str) -> tuple[int, int]:
        """(seeders, leechers) now, each peer once whichever of the entry's hashes it used."""
        entry = self.catalog.entries.get(info_hash)
        if entry is None:
            return 0, 0
        swarm = self.swarms.get(entry.swarm_key)
        return swarm.counts() if swarm is not None else (0, 0)

    def completions(self, info_hash: str, stored: int) -> int:
        """The larger of the store's count and this process's, which counts at once."""
        entry = self.catalog.entries.get(info_hash)
        return max(stored, entry.completions) if entry is not None else stored

    def all_counts(self) -> dict[str, tuple[int, int]]:
        """Live counts of every registered entry that has peers."""
        return self.counts_in(self.swarms.swarms)

    async def collect(self, reactor: IReactorTime) -> dict[str, tuple[int, int]]:
        """Every entry's counts, a slice of swarms per reactor turn so announces never wait
        long behind it."""
        keys = list(self.swarms.swarms)
        counts: dict[str, tuple[int, int]] = {}
        for start in range(0, len(keys), COUNTS_SLICE):
            if start:
                await deferLater(reactor, 0, lambda: None)
            counts.update(self.counts_in(keys[start : start + COUNTS_SLICE]))
        return counts

    def counts_in(self, keys: Iterable[bytes]) -> dict[str, tuple[int, int]]:
        """Live counts of the registered entries among these swarms (gone ones skipped)."""
        by_wire = self.catalog.by_wire
        swarms = self.swarms.swarms
        counts = {}
        for key in keys:
            found = by_wire.get(key)
            swarm = swarms.get(key)
            if found is not None and found[0] == key and swarm is not None:
                counts[found[1].info_hash] = swarm.counts()
        return counts


def _prefixes(hashes: Iterable[str]) -> set[str]:
    """The 40 hex of each hash's 20-byte wire form (what the catalog's blocked set holds)."""
    return {h[:40] for h in hashes}


class CountsPublisher(Service):
    """Copies live counts into the store every few seconds, only those that changed, so that
    sort=seeders orders whole result sets, not just a page."""

    log = Logger()

    def __init__(
        self,
        live: LiveRegistry,
        store: IStore,
        reactor: IReactorTime,
        every: float = COUNTS_EVERY,
        owned: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        """``owned``: with several workers, the entries whose swarms live in this one; only
        those are written (a first write zeroes them instead of every stored count)."""
        self.owned = owned
        self.live = live
        self.store = store
        self.reactor = reactor
        self.every = every
        self.written: dict[str, tuple[int, int]] | None = None  # None: the store may be stale
        self._busy = False
        self._loop: LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self.publish)
        self._loop.clock = self.reactor
        self._loop.start(self.every, now=True)

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        return None

    def publish(self) -> Deferred[None]:
        if self._busy:
            return succeed(None)
        self._busy = True
        return Deferred.fromCoroutine(self._publish())

    async def _publish(self) -> None:
        try:
            try:
                now = await self.live.collect(self.reactor)
            except Exception as e:  # the swarm store is away: keep what the store has
                self.log.debug("live counts not collected: {e}", e=str(e))
                return
            last = self.written
            if last is None:
                changed = now
                if self.owned is not None:
                    for info_hash in self.owned():
                        changed.setdefault(info_hash, (0, 0))
            else:
                changed = {h: c for h, c in now.items() if last.get(h) != c}
                changed.update({h: (0, 0) for h in last if h not in now})
                if not changed:
                    return
            try:
                await self.store.save_counts(changed, reset=last is None and self.owned is None)
            except Exception as e:
                self.written = None  # write everything next time
                self.log.warn("saving live counts failed: {e}", e=str(e))
            else:
                self.written = now
        finally:
            self._busy = False


class ChangeFeed(Service):
    """Once the catalog is loaded: follow other processes' registry writes (PostgreSQL)."""

    def __init__(self, store: IStore, live: LiveRegistry) -> None:
        self.store = store
        self.live = live

    def startService(self) -> None:
        super().startService()
        self.store.watch(self.live)
