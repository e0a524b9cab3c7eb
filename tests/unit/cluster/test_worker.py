"""The parts of a worker that exist only with several workers (weightless.cluster.worker):
two workers in one process, their meshes joined in memory. Live counts of swarms another
worker owns come from its shares, registry writes are relayed (SQLite) or not (PostgreSQL),
/metrics sums every worker, and the supervisor's sockets are adopted and released."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.test.iosim import IOPump

from weightless.cluster import worker as worker_module
from weightless.cluster.ipc import Mesh
from weightless.cluster.owner import owner_of
from weightless.cluster.router import LIVE, Router
from weightless.cluster.worker import AdoptedPorts, ClusterLive, ClusterMetrics, Sharing
from weightless.metrics import Stats
from weightless.registry.live import LiveRegistry
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.catalog import Catalog
from weightless.tracker.core import Policy, Tracker
from weightless.tracker.swarm import SwarmStore

from .kit import link

# registry hashes whose swarms worker 0 and worker 1 own (of 2)
MINE = "00000000" + "11" * 28
THEIRS = "00000001" + "22" * 28
THEIRS_V1 = "33" * 20
STAMPS = itertools.count(1)  # one clock for every worker of a test, as the machine's is


class Worker:
    def __init__(self, index: int, relay: bool = True) -> None:
        rng = random.Random(index)
        self.catalog = Catalog()
        self.swarms = SwarmStore(rng.random)
        self.tracker = Tracker(
            Policy(open=True), self.catalog, self.swarms, PendingWrites(), None, None, rng.random
        )
        self.clock = MemoryReactorClock()
        self.mesh = Mesh(index, 2, "/nowhere", self.clock)
        self.router = Router(self.mesh, self.tracker)
        self.live = ClusterLive(
            self.catalog, self.swarms, self.router, relay, self.clock, STAMPS.__next__
        )
        self.router.live_of = self.live.live_of
        self.notes: list[dict[str, Any]] = []

        # connected as weightless.tap.worker_seat connects them
        def hear(change: dict[str, Any]) -> None:
            self.notes.append(change)
            self.live.apply(change)

        self.router.on_catalog = hear

    def peers(self, info_hash: str, seeders: int, leechers: int) -> None:
        key = bytes.fromhex(info_hash)[:20]
        for i in range(seeders + leechers):
            addr = bytes([10, 0, i // 256, i % 256, 0x1A, 0xE1])
            self.swarms.put(key, addr, b"-XX0001-%012d" % i, i < seeders, 100)


def pair(relay: bool = True) -> tuple[Worker, Worker, IOPump]:
    a, b = Worker(0, relay), Worker(1, relay)
    return a, b, link(a.mesh, b.mesh)


def test_the_hashes_are_owned_as_the_tests_assume() -> None:
    assert owner_of(bytes.fromhex(MINE)[:20], 2) == 0
    assert owner_of(bytes.fromhex(THEIRS)[:20], 2) == 1


def test_a_registry_write_here_reaches_the_other_worker() -> None:
    a, b, pump = pair()
    a.live.upserted(THEIRS, THEIRS_V1, 3)
    pump.flush()
    assert b.catalog.lookup(THEIRS_V1) is b.catalog.entries[THEIRS]
    assert b.catalog.entries[THEIRS].completions == 3
    assert b.notes == [{"op": "upserted", "args": [THEIRS, THEIRS_V1, 3]}]
    a.live.taken_down([THEIRS])
    pump.flush()
    assert THEIRS not in b.catalog.entries
    assert bytes.fromhex(THEIRS)[:20] in b.catalog.blocked
    assert a.notes == []  # what a worker hears it does not send back


def test_without_relay_writes_stay_here() -> None:
    a, b, pump = pair(relay=False)
    a.live.upserted(MINE, None, 0)
    a.live.taken_down([THEIRS])
    pump.flush()
    assert MINE in a.catalog.entries and b.notes == [] and b.catalog.entries == {}


def registered(*workers: Worker) -> None:
    """Both entries in each worker's catalog (as loaded from the store: nothing relayed)."""
    for w in workers:
        LiveRegistry.upserted(w.live, MINE, None, 0)
        LiveRegistry.upserted(w.live, THEIRS, None, 0)


def test_counts_of_a_swarm_owned_here_are_live() -> None:
    a, _, _ = pair()
    registered(a)
    a.peers(MINE, 2, 1)
    assert a.live.counts(MINE) == (2, 1)
    assert a.live.owned() == [MINE]


def test_counts_of_a_swarm_owned_elsewhere_come_from_its_shares() -> None:
    a, b, pump = pair()
    registered(a, b)
    a.peers(THEIRS, 5, 5)  # not its swarm: not what it reports
    assert a.live.counts(THEIRS) == (0, 0)  # nothing shared yet
    b.peers(THEIRS, 2, 3)
    b.catalog.entries[THEIRS].completions = 7
    b.live.share()
    pump.flush()
    assert a.live.counts(THEIRS) == (2, 3)
    assert a.live.completions(THEIRS, 4) == 7
    assert a.live.completions(THEIRS, 9) == 9  # the store's count when larger
    assert a.live.counts("44" * 32) == (0, 0)  # not registered


def read(w: Worker, pump: IOPump, info_hash: str, stored: int = 0) -> tuple[int, int, int]:
    """What a registry read at worker ``w`` shows: `fresh`, then the counts."""
    done: list[Any] = []
    w.live.fresh([info_hash]).addBoth(done.append)
    pump.flush()
    assert done == [None]
    return (*w.live.counts(info_hash), w.live.completions(info_hash, stored))


def test_a_read_elsewhere_asks_the_owner_and_never_shows_less_than_it() -> None:
    """The owner counts a completion; a client that read it there reads it from any worker
    at once, not a share later."""
    a, b, pump = pair()
    registered(a, b)
    b.peers(THEIRS, 1, 1)
    b.live.share()
    pump.flush()
    for n in range(1, 6):
        b.catalog.entries[THEIRS].completions = n  # a completed announce, at the owner
        b.peers(THEIRS, 1 + n, 1)
        seen_at_owner = read(b, pump, THEIRS)
        assert seen_at_owner == (1 + n, 1, n)
        assert read(a, pump, THEIRS) == seen_at_owner  # no share since


def test_a_read_of_entries_owned_here_asks_nobody() -> None:
    a, b, pump = pair()
    registered(a, b)
    a.peers(MINE, 1, 0)
    asked: list[Any] = []
    b.router.live_of = lambda hashes: asked.append(hashes) or {"counts": {}, "stamp": 0}
    assert read(a, pump, MINE) == (1, 0, 0)
    assert read(a, pump, "44" * 32) == (0, 0, 0)  # not registered
    assert asked == []


def test_one_read_of_many_entries_asks_each_owner_once() -> None:
    a, b, pump = pair()
    registered(a, b)
    other = "00000001" + "55" * 28
    LiveRegistry.upserted(a.live, other, None, 0)
    LiveRegistry.upserted(b.live, other, None, 0)
    b.peers(THEIRS, 2, 0)
    b.peers(other, 0, 3)
    asked: list[list[str]] = []
    live_of = b.live.live_of
    b.router.live_of = lambda hashes: asked.append(hashes) or live_of(hashes)
    done: list[Any] = []
    a.live.fresh([MINE, THEIRS, other]).addBoth(done.append)
    pump.flush()
    assert done == [None] and asked == [[THEIRS, other]]
    assert (a.live.counts(THEIRS), a.live.counts(other)) == ((2, 0), (0, 3))


def test_an_owner_that_does_not_answer_leaves_the_last_shares() -> None:
    a, b, pump = pair()
    registered(a, b)
    b.peers(THEIRS, 2, 1)
    b.catalog.entries[THEIRS].completions = 4
    b.live.share()
    pump.flush()
    b.mesh.handlers.clear()  # b is restarting: it answers nothing it knows
    done: list[Any] = []
    a.live.fresh([THEIRS]).addBoth(done.append)
    pump.flush()
    assert done == [None]  # answered with what was shared, not an error
    assert (a.live.counts(THEIRS), a.live.completions(THEIRS, 0)) == ((2, 1), 4)


def test_a_hung_owner_holds_a_read_up_for_a_second_at_most() -> None:
    a, b, pump = pair()
    registered(a, b)
    b.peers(THEIRS, 1, 0)
    b.live.share()
    pump.flush()
    b.mesh.handlers[LIVE] = lambda payload: Deferred()  # asked, it never answers
    done: list[Any] = []
    a.live.fresh([THEIRS]).addBoth(done.append)
    pump.flush()
    assert done == []
    a.clock.advance(worker_module.ASK_TIMEOUT)
    assert done == [None] and a.live.counts(THEIRS) == (1, 0)


def test_a_share_made_before_an_answer_but_arriving_after_it_is_stale() -> None:
    a, b, _ = pair()
    registered(a, b)
    b.peers(THEIRS, 1, 0)
    b.live.share()  # made now (seeders 1), delivered only after the answer below
    b.peers(THEIRS, 1, 2)
    b.catalog.entries[THEIRS].completions = 1
    answer = b.live.live_of([THEIRS])
    late_share = {"op": "counts", "args": [{THEIRS: [1, 0, 0]}], "stamp": answer["stamp"] - 1}
    a.live.apply({"op": "counts", "args": [answer["counts"]], "stamp": answer["stamp"]})
    a.live.apply(late_share)
    assert (a.live.counts(THEIRS), a.live.completions(THEIRS, 0)) == ((1, 2), 1)
    # a later share does count, shrinking swarm and all; completions never go back
    a.live.apply({"op": "counts", "args": [{THEIRS: [0, 1, 0]}], "stamp": answer["stamp"] + 1})
    assert (a.live.counts(THEIRS), a.live.completions(THEIRS, 0)) == ((0, 1), 1)


def test_share_sends_only_what_changed() -> None:
    a, b, pump = pair()
    registered(a, b)
    b.peers(THEIRS, 1, 0)
    b.live.share()
    b.live.share()
    pump.flush()
    assert len(a.notes) == 1
    assert [n["args"] for n in a.notes] == [[{THEIRS: [1, 0, 0]}]]
    b.peers(THEIRS, 1, 1)  # one more leecher
    b.live.share()
    pump.flush()
    assert a.notes[-1]["args"] == [{THEIRS: [1, 1, 0]}]


def test_a_swarm_that_empties_is_shared_as_zero_once() -> None:
    a, b, pump = pair()
    registered(a, b)
    b.peers(THEIRS, 1, 1)
    b.live.share()
    b.swarms.drop(bytes.fromhex(THEIRS)[:20])
    b.live.share()
    b.live.share()
    pump.flush()
    assert [n["args"][0] for n in a.notes] == [{THEIRS: [1, 1, 0]}, {THEIRS: [0, 0, 0]}]
    assert a.live.counts(THEIRS) == (0, 0)


def test_share_walks_either_the_entries_or_the_swarms() -> None:
    """Many open-mode swarms and few entries, or the other way round: the same shares."""
    for extra_swarms in (0, 20):
        a, b, pump = pair()
        registered(a, b)
        b.peers(THEIRS, 1, 2)
        for i in range(extra_swarms):
            b.swarms.put(bytes([1, i]) + bytes(18), b"\x0a\0\0\x01\x1a\xe1", b"p" * 20, True, 1)
        b.live.share()
        pump.flush()
        assert [(n["op"], n["args"]) for n in a.notes] == [("counts", [{THEIRS: [1, 2, 0]}])]


def test_metrics_sum_every_worker() -> None:
    a, b, pump = pair()
    stats_a, stats_b = Stats(), Stats()
    stats_a.count("http", "announce", "ok")
    stats_b.count("http", "announce", "ok")
    stats_b.count("udp", "scrape", "ok")
    metrics = ClusterMetrics(a.router, stats_a, a.swarms)
    other = ClusterMetrics(b.router, stats_b, b.swarms)
    a.router.stats_of, b.router.stats_of = metrics.local, other.local
    a.peers(MINE, 1, 0)
    b.peers(THEIRS, 2, 0)
    b.peers(MINE, 0, 1)
    done = metrics.refresh()
    pump.flush()
    got: list[Any] = []
    done.addBoth(got.append)
    assert got == [None]
    assert metrics.total.requests == {("http", "announce", "ok"): 2, ("udp", "scrape", "ok"): 1}
    assert (metrics.peers, metrics.swarm_count) == (4, 3)


def test_metrics_leave_out_a_worker_that_does_not_answer() -> None:
    a = Worker(0)
    stats = Stats()
    stats.count("http", "announce", "ok")
    metrics = ClusterMetrics(a.router, stats, a.swarms)
    a.router.stats_of = metrics.local
    a.router.all_stats = lambda: succeed([a.router.stats_of()])  # type: ignore[misc]
    metrics.refresh()
    assert metrics.total.requests == {("http", "announce", "ok"): 1}


def test_sharing_runs_every_second_while_running() -> None:
    shared: list[int] = []
    live: Any = type("Live", (), {"share": lambda self: shared.append(1)})()
    clock = MemoryReactorClock()
    service = Sharing(live, clock)
    service.startService()
    assert shared == []  # not at once: nothing to share yet
    clock.advance(worker_module.SHARE_EVERY)
    clock.advance(worker_module.SHARE_EVERY)
    assert len(shared) == 2
    service.stopService()
    clock.advance(worker_module.SHARE_EVERY * 5)
    assert len(shared) == 2
    service.stopService()  # twice is harmless


class FakePort:
    def __init__(self, what: tuple[Any, ...]) -> None:
        self.what = what
        self.stopped = False

    def stopListening(self) -> Deferred[None]:
        self.stopped = True
        return succeed(None)


class FakeMesh:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def listen(self) -> None:
        self.log.append("mesh listens")

    def close(self) -> None:
        self.log.append("mesh closed")


class Adopting(MemoryReactorClock):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log
        self.ports: list[FakePort] = []

    def adoptStreamPort(self, fd: int, family: int, factory: Any) -> FakePort:
        self.log.append(f"http {fd}")
        self.ports.append(FakePort((fd, family, factory)))
        return self.ports[-1]


@pytest.mark.parametrize("udp", [True, False])
def test_adopted_ports(monkeypatch: pytest.MonkeyPatch, udp: bool) -> None:
    log: list[str] = []
    reactor = Adopting(log)

    def adopt(r: Any, fd: int, family: int, protocol: Any) -> FakePort:
        assert r is reactor
        log.append(f"udp {fd}")
        reactor.ports.append(FakePort((fd, family, protocol)))
        return reactor.ports[-1]

    monkeypatch.setattr(worker_module.udpport, "adopt", adopt)
    factory, protocol = object(), object()
    service = AdoptedPorts(
        reactor,
        FakeMesh(log),
        (5, 10, factory),
        (6, 10, protocol) if udp else None,  # type: ignore[arg-type]
    )
    service.startService()
    assert log == ["mesh listens", "http 5", *(["udp 6"] if udp else [])]
    assert reactor.ports[0].what == (5, 10, factory)
    done: list[Any] = []
    service.stopService().addBoth(done.append)
    assert len(done) == 1 and not isinstance(done[0], Exception)
    assert all(p.stopped for p in reactor.ports) and log[-1] == "mesh closed"
    assert service.ports == []


def test_a_completion_reaches_the_other_worker_at_once_and_never_goes_back() -> None:
    a, b, pump = pair()
    registered(a, b)
    b.tracker.on_completed = b.live.completed  # as weightless.tap.worker_seat connects it
    theirs = bytes.fromhex(THEIRS)[:20]
    b.catalog.entries[THEIRS].completions = 4
    b.tracker.announce(theirs, b"\x0a\x00\x00\x01\x1a\xe1", b"p" * 20, 100, 0, 0, 2, None, None, 1)
    b.tracker.announce(theirs, b"\x0a\x00\x00\x01\x1a\xe1", b"p" * 20, 0, 0, 0, 1, None, None, 2)
    pump.flush()  # no share of counts yet: the completion itself was told
    assert a.live.completions(THEIRS, 0) == 5
    assert a.notes == [{"op": "completed", "args": [THEIRS, 5]}]
    # a share from before the completion, arriving late, does not take it back
    a.live.apply({"op": "counts", "args": [{THEIRS: [1, 0, 4]}]})
    assert a.live.completions(THEIRS, 0) == 5
