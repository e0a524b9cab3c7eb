"""The registry's live counts when swarms are in Redis: every tracker reads the same shared
swarms, so every machine answers the same ``seeders``/``leechers``.

The counts of every registered entry are read from Redis every ``COUNTS_EVERY`` seconds (one
script run per entry, sent together) and kept here for the pages and the API, which read them
without waiting; ``CountsPublisher`` copies them into the store for sort=seeders."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from weightless.registry.live import COUNTS_EVERY, COUNTS_SLICE, LiveRegistry
from weightless.sharedswarms.redis import RedisSwarms
from weightless.tracker.catalog import Catalog, wire_hashes
from weightless.tracker.swarm import SwarmStore


class SharedLive(LiveRegistry):
    """``relay``: with several workers on SQLite (no change feed), tells the other workers of
    a registry write made here, as ``ClusterLive`` does."""

    log = Logger()

    def __init__(
        self,
        catalog: Catalog,
        shared: RedisSwarms,
        clock: Callable[[], float],
        peer_ttl: int,
        relay: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        super().__init__(catalog, SwarmStore(random.random))  # no swarms in this process
        self.shared = shared
        self.clock = clock
        self.peer_ttl = peer_ttl
        self.relay = relay
        self.latest: dict[str, tuple[int, int]] = {}  # info_hash -> seeders, leechers

    def counts(self, info_hash: str) -> tuple[int, int]:
        return self.latest.get(info_hash, (0, 0))

    def all_counts(self) -> dict[str, tuple[int, int]]:
        return dict(self.latest)

    async def collect(self, reactor: IReactorTime) -> dict[str, tuple[int, int]]:
        """Every registered entry's counts from Redis (SwarmStoreUnavailable while it is
        away: the last counts stay)."""
        entries = list(self.catalog.entries.values())
        now = int(self.clock())
        counts: dict[str, tuple[int, int]] = {}
        for start in range(0, len(entries), COUNTS_SLICE):
            part = entries[start : start + COUNTS_SLICE]
            found = await self.shared.counts_of([e.swarm_key for e in part], now, self.peer_ttl)
            for entry, (seeders, leechers, done) in zip(part, found, strict=True):
                entry.completions = max(entry.completions, done)
                if seeders or leechers:
                    counts[entry.info_hash] = (seeders, leechers)
        self.latest = counts
        return counts

    def upserted(self, info_hash: str, v1_info_hash: str | None, completions: int) -> None:
        super().upserted(info_hash, v1_info_hash, completions)
        if self.relay is not None:
            self.relay({"op": "upserted", "args": [info_hash, v1_info_hash, completions]})

    def taken_down(self, hashes: list[str]) -> None:
        """Forget and block the entry here, and drop its swarms from Redis for everyone."""
        super().taken_down(hashes)
        for h in hashes:
            self.latest.pop(h, None)
            for key in wire_hashes(h):
                self.shared.drop(key).addErrback(self._not_dropped, key)
        if self.relay is not None:
            self.relay({"op": "taken_down", "args": [hashes]})

    def _not_dropped(self, failure: Any, key: bytes) -> None:
        # the hash is blocked on every tracker all the same; its peers expire in Redis
        self.log.warn("swarm {key} not dropped from Redis: {e}", key=key.hex(), e=failure.value)

    def apply(self, change: dict[str, Any]) -> None:
        """A registry write another worker relayed (``Router.on_catalog``)."""
        if change["op"] == "upserted":
            LiveRegistry.upserted(self, *change["args"])
        elif change["op"] == "taken_down":
            LiveRegistry.taken_down(self, *change["args"])


class CountsReader(Service):
    """Refreshes a SharedLive's counts every ``every`` seconds, in a process that does not
    publish them to the store (a worker other than the first): its pages answer the same
    numbers as every other process's."""

    log = Logger()

    def __init__(self, live: SharedLive, reactor: IReactorTime, every: float = COUNTS_EVERY):
        self.live = live
        self.reactor = reactor
        self.every = every
        self._loop: LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self._read)
        self._loop.clock = self.reactor
        self._loop.start(self.every, now=True)

    def stopService(self) -> None:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def _read(self) -> Deferred[Any]:
        d = Deferred.fromCoroutine(self.live.collect(self.reactor))
        return d.addErrback(lambda f: self.log.debug("counts not read: {e}", e=f.value))
