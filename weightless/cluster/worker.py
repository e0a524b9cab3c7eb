"""The parts of a worker process that only exist with several workers: listening on the
sockets the supervisor bound, the mesh, registry writes and live counts shared with the other
workers, and /metrics for the whole tracker."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred, succeed
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import DatagramProtocol, Factory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from weightless.cluster.ipc import Mesh
from weightless.cluster.router import Router
from weightless.metrics import Stats
from weightless.registry.live import LiveRegistry
from weightless.tracker.catalog import Catalog, CatalogEntry
from weightless.tracker.swarm import SwarmStore
from weightless.udp import port as udpport

SHARE_EVERY = 1.0  # seconds: how stale another worker's registry counts may be
ASK_TIMEOUT = 1.0  # seconds a registry read waits for an owner's counts, else the last shared


class AdoptedPorts(Service):
    """Listen on the supervisor's sockets (this worker's member of each reuseport group)."""

    def __init__(
        self,
        reactor: Any,
        mesh: Mesh,
        http: tuple[int, int, Factory],
        udp: tuple[int, int, DatagramProtocol] | None,
    ) -> None:
        self.reactor = reactor
        self.mesh = mesh
        self.http = http
        self.udp = udp
        self.ports: list[IListeningPort] = []

    def startService(self) -> None:
        super().startService()
        self.mesh.listen()  # before the first request that may need another worker
        fd, family, factory = self.http
        self.ports.append(self.reactor.adoptStreamPort(fd, family, factory))
        if self.udp is not None:
            fd, family, protocol = self.udp
            self.ports.append(udpport.adopt(self.reactor, fd, family, protocol))

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        ports, self.ports = self.ports, []
        stopping = [maybeDeferred(port.stopListening) for port in ports]
        stopping.append(maybeDeferred(self.mesh.close))
        return gatherResults(stopping, consumeErrors=True)


class ClusterLive(LiveRegistry):
    """The registry view of one worker among several: a registry read asks the workers that
    own the entries' swarms for their counts at that moment (`fresh`), so that a value a
    client has read from one worker is never read lower from another a moment later; the
    latest shares stand in when an owner cannot answer in time. With ``relay``, this worker's
    registry writes go to the others.

    ``relay`` is for SQLite, which has no change feed. PostgreSQL's LISTEN/NOTIFY already
    brings every write to every worker; relaying those too would multiply each write by the
    number of workers and could reorder them.

    ``stamp`` orders what owners tell (nanoseconds of a clock all the machine's processes
    share): an answer and a share may arrive in either order, the later-made one wins."""

    log = Logger()

    def __init__(
        self,
        catalog: Catalog,
        swarms: SwarmStore,
        router: Router,
        relay: bool,
        reactor: Any,
        stamp: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        super().__init__(catalog, swarms)
        self.router = router
        self.relay = relay
        self.reactor = reactor
        self.stamp = stamp
        self.shared: dict[str, tuple[int, int, int]] = {}  # info_hash -> seeders, leechers, done
        self._stamps: dict[str, int] = {}  # info_hash -> when its owner made shared[info_hash]
        self._sent: dict[str, tuple[int, int, int]] = {}

    def upserted(self, info_hash: str, v1_info_hash: str | None, completions: int) -> None:
        super().upserted(info_hash, v1_info_hash, completions)
        if self.relay:
            self.router.catalog_changed(
                {"op": "upserted", "args": [info_hash, v1_info_hash, completions]}
            )

    def taken_down(self, hashes: list[str]) -> None:
        super().taken_down(hashes)
        if self.relay:
            self.router.catalog_changed({"op": "taken_down", "args": [hashes]})

    def completed(self, entry: CatalogEntry) -> None:
        """A completion counted in a swarm this worker owns (``Tracker.on_completed``): the
        others learn it now, so that no worker answers a lower count a moment after the owner
        answered the new one."""
        self.router.catalog_changed(
            {"op": "completed", "args": [entry.info_hash, entry.completions]}
        )

    def apply(self, change: dict[str, Any]) -> None:
        """A change another worker told (``Router.on_catalog``): a registry write made there,
        a completion counted there, or the live counts of the swarms it owns. Completions
        heard from the owner are kept in this worker's catalog too: a count never goes back,
        whatever order the messages of the owner and the store's answers come in."""
        if change["op"] == "upserted":
            LiveRegistry.upserted(self, *change["args"])
        elif change["op"] == "taken_down":
            LiveRegistry.taken_down(self, *change["args"])
        elif change["op"] == "completed":
            info_hash, completions = change["args"]
            self._raise(info_hash, completions)
        elif change["op"] == "counts":
            self._hear(change["args"][0], change.get("stamp", 0))

    def _hear(self, counts: Mapping[str, Sequence[int]], stamp: int) -> None:
        """Counts an owner made at ``stamp``; older than those already heard, they are stale.
        Completions never go back (a restarted owner may not have counted its last ones)."""
        for info_hash, (seeders, leechers, done) in counts.items():
            if stamp < self._stamps.get(info_hash, 0):
                continue
            before = self.shared.get(info_hash, (0, 0, 0))[2]
            self.shared[info_hash] = (seeders, leechers, max(done, before))
            self._stamps[info_hash] = stamp
            self._raise(info_hash, done)

    def _raise(self, info_hash: str, completions: int) -> None:
        entry = self.catalog.entries.get(info_hash)
        if entry is not None and completions > entry.completions:
            entry.completions = completions

    def _owns(self, swarm_key: bytes) -> bool:
        return self.router.owner(swarm_key) == self.router.index

    def fresh(self, info_hashes: Iterable[str]) -> Deferred[None]:
        """Ask the owners of these entries' swarms, each once, what they count now."""
        by_owner: dict[int, list[str]] = defaultdict(list)
        for info_hash in info_hashes:
            entry = self.catalog.entries.get(info_hash)
            if entry is not None and not self._owns(entry.swarm_key):
                by_owner[self.router.owner(entry.swarm_key)].append(info_hash)
        if not by_owner:
            return succeed(None)
        asks = []
        for owner, hashes in by_owner.items():
            asked = self.router.live_counts(owner, hashes)
            asked.addTimeout(ASK_TIMEOUT, self.reactor)
            asks.append(asked.addCallbacks(self._answered, self._unanswered, errbackArgs=(owner,)))
        return gatherResults(asks).addCallback(lambda _: None)

    def _answered(self, answer: dict[str, Any]) -> None:
        self._hear(answer["counts"], answer["stamp"])

    def _unanswered(self, failure: Any, owner: int) -> None:
        self.log.warn(
            "worker {owner} did not tell its live counts: {e}; the last shared stand in",
            owner=owner,
            e=failure.getErrorMessage(),
        )

    def live_of(self, info_hashes: list[str]) -> dict[str, Any]:
        """What this worker counts now for those of these entries whose swarms it owns
        (``Router.live_of``)."""
        counts = {}
        for info_hash in info_hashes:
            entry = self.catalog.entries.get(info_hash)
            if entry is not None and self._owns(entry.swarm_key):
                counts[info_hash] = (*super().counts(info_hash), entry.completions)
        return {"counts": counts, "stamp": self.stamp()}

    def counts(self, info_hash: str) -> tuple[int, int]:
        entry = self.catalog.entries.get(info_hash)
        if entry is None:
            return 0, 0
        if self._owns(entry.swarm_key):
            return super().counts(info_hash)
        seeders, leechers, _ = self.shared.get(info_hash, (0, 0, 0))
        return seeders, leechers

    def completions(self, info_hash: str, stored: int) -> int:
        found = super().completions(info_hash, stored)
        return max(found, self.shared.get(info_hash, (0, 0, 0))[2])

    def owned(self) -> list[str]:
        """The entries whose swarms live in this worker (it writes their counts to the store)."""
        return [h for h, entry in self.catalog.entries.items() if self._owns(entry.swarm_key)]

    def share(self) -> None:
        """Tell the other workers what changed in the swarms this one owns."""
        stamp = self.stamp()
        now: dict[str, tuple[int, int, int]] = {}
        entries = self.catalog.entries
        if len(entries) < len(self.swarms.swarms):  # walk the shorter of the two
            swarms = self.swarms.swarms
            for info_hash, entry in entries.items():
                swarm = swarms.get(entry.swarm_key)
                if swarm is not None:
                    now[info_hash] = (*swarm.counts(), entry.completions)
        else:
            for info_hash, (seeders, leechers) in self.all_counts().items():
                now[info_hash] = (seeders, leechers, entries[info_hash].completions)
        for info_hash in self._sent:
            gone = entries.get(info_hash)
            if info_hash not in now and gone is not None:
                now[info_hash] = (0, 0, gone.completions)
        changed = {h: c for h, c in now.items() if self._sent.get(h) != c}
        self._sent = {h: c for h, c in now.items() if c[:2] != (0, 0)}
        if changed:
            self.router.catalog_changed({"op": "counts", "args": [changed], "stamp": stamp})


class Sharing(Service):
    def __init__(self, live: ClusterLive, reactor: Any) -> None:
        self.loop = LoopingCall(live.share)
        self.loop.clock = reactor

    def startService(self) -> None:
        super().startService()
        self.loop.start(SHARE_EVERY, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self.loop.running:
            self.loop.stop()


class ClusterMetrics:
    """/metrics from any worker: every worker's counters summed, peers and swarms summed."""

    def __init__(self, router: Router, stats: Stats, swarms: SwarmStore) -> None:
        self.router = router
        self.stats = stats
        self.swarms = swarms
        self.total = Stats()
        self.peers = 0
        self.swarm_count = 0

    def local(self) -> dict[str, Any]:
        """This worker's counters, peers and swarms (``Router.stats_of``)."""
        return {
            **self.stats.to_dict(),
            "peers": self.swarms.peer_count,
            "swarms": len(self.swarms.swarms),
        }

    def refresh(self) -> Deferred[None]:
        def summed(parts: list[dict[str, Any]]) -> None:
            self.total.replace_with_sum(parts)
            self.peers = sum(p["peers"] for p in parts)
            self.swarm_count = sum(p["swarms"] for p in parts)

        return self.router.all_stats().addCallback(summed)
