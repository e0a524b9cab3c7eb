"""The supervisor of ``--workers N`` (weightless.cluster.supervisor) without forking: a fake
reactor records the workers it would spawn. What each worker is given, restarts with backoff,
a clean stop (TERM, then KILL after the grace), and the workers' swarm snapshots merged."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.error import ProcessExitedAlready, ProcessTerminated
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from weightless.cluster import supervisor as sup
from weightless.cluster.seat import ENV, Seat
from weightless.config import Config
from weightless.tracker import snapshot
from weightless.tracker.swarm import SwarmStore


class FakeProcess:
    def __init__(self) -> None:
        self.signals: list[str] = []
        self.gone = False

    def signalProcess(self, name: str) -> None:
        if self.gone:
            raise ProcessExitedAlready()
        self.signals.append(name)


class Reactor(MemoryReactorClock):
    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[dict[str, Any]] = []

    def spawnProcess(self, protocol: Any, executable: str, args: list[str], **kw: Any) -> Any:
        process = FakeProcess()
        protocol.makeConnection(process)
        self.spawned.append({"protocol": protocol, "executable": executable, "args": args, **kw})
        return process


class FakeSocket:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.closed = False

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        self.closed = True


def supervisor(tmp_path: Path, workers: int = 2, udp: bool = True, **config: Any) -> Any:
    """A Supervisor as startService leaves it, with fake sockets and a fake reactor."""
    reactor = Reactor()
    s = sup.Supervisor(Config(workers=workers, **config), ["--open", "--http", "tcp:0"], reactor)
    s.directory = str(tmp_path / "run")
    os.mkdir(s.directory)
    s.http = [FakeSocket(10 + i) for i in range(workers)]
    s.udp = [FakeSocket(20 + i) for i in range(workers)] if udp else []
    s.http_family, s.udp_family, s.secret = 10, 2, "ab" * 16
    for i in range(workers):
        s.spawn(i)
    return s


def ended(s: Any, index: int) -> None:
    s.workers[index].processEnded(Failure(ProcessTerminated(exitCode=1)))


def test_each_worker_is_told_its_seat_and_keeps_its_sockets(tmp_path: Path) -> None:
    s = supervisor(tmp_path)
    first, second = s.reactor.spawned
    assert first["executable"] == sys.executable
    assert first["args"] == [
        sys.executable,
        "-c",
        sup.TWISTD,
        "-n",
        "--pidfile=",
        "weightless",
        "--open",
        "--http",
        "tcp:0",
    ]
    seat = Seat.from_env(second["env"])
    assert seat == Seat(1, 2, s.directory, 11, 10, 21, 2, "ab" * 16, os.getpid())
    assert second["childFDs"] == {0: 0, 1: 1, 2: 2, 11: 11, 21: 21}
    assert second["env"]["PATH"] == os.environ["PATH"]  # the rest of the environment too
    assert sorted(s.workers) == [0, 1]


def test_without_udp(tmp_path: Path) -> None:
    s = supervisor(tmp_path, workers=1, udp=False)
    (spawned,) = s.reactor.spawned
    assert Seat.from_env(spawned["env"]).udp_fd is None  # type: ignore[union-attr]
    assert spawned["childFDs"] == {0: 0, 1: 1, 2: 2, 10: 10}
    assert ENV in spawned["env"]


def test_a_worker_that_dies_is_restarted_with_growing_backoff(tmp_path: Path) -> None:
    s = supervisor(tmp_path)
    delays = []
    for _ in range(8):
        before = len(s.reactor.spawned)
        ended(s, 1)
        assert 1 not in s.workers
        waited = 0.0
        while len(s.reactor.spawned) == before:
            s.reactor.advance(0.25)
            waited += 0.25
        delays.append(waited)
        assert Seat.from_env(s.reactor.spawned[-1]["env"]).index == 1  # type: ignore[union-attr]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert 0 in s.workers and len(s.reactor.spawned) == 2 + 8  # worker 0 untouched


def test_a_worker_up_long_enough_starts_its_backoff_again(tmp_path: Path) -> None:
    s = supervisor(tmp_path)
    ended(s, 0)
    s.reactor.advance(sup.BACKOFF_FIRST)
    ended(s, 0)
    s.reactor.advance(2 * sup.BACKOFF_FIRST)
    assert s.backoff[0] == 4 * sup.BACKOFF_FIRST
    s.reactor.advance(sup.HEALTHY_AFTER + 1)
    before = len(s.reactor.spawned)
    ended(s, 0)
    s.reactor.advance(sup.BACKOFF_FIRST)
    assert len(s.reactor.spawned) == before + 1


def test_stop_terms_every_worker_then_cleans_up(tmp_path: Path) -> None:
    s = supervisor(tmp_path, swarm_file=None)
    processes = [w.transport for w in s.workers.values()]
    done: list[Any] = []
    s.stopService().addBoth(done.append)
    assert [p.signals for p in processes] == [["TERM"], ["TERM"]]
    ended(s, 0)
    assert done == [] and os.path.isdir(s.directory)
    ended(s, 1)
    assert done == [None]
    assert s.reactor.getDelayedCalls() == []  # no restart planned, no KILL pending
    assert all(sock.closed for sock in s.http + s.udp)
    assert not os.path.exists(s.directory)
    s.reactor.advance(sup.STOP_GRACE + sup.BACKOFF_MAX)
    assert [p.signals for p in processes] == [["TERM"], ["TERM"]]  # no KILL, no restart
    assert len(s.reactor.spawned) == 2


def test_a_worker_that_does_not_stop_is_killed_after_the_grace(tmp_path: Path) -> None:
    s = supervisor(tmp_path, swarm_file=None)
    stuck, quick = s.workers[0].transport, s.workers[1].transport
    quick.gone = True  # already exited: its signal is not an error
    s.stopService()
    ended(s, 1)
    s.reactor.advance(sup.STOP_GRACE - 1)
    assert stuck.signals == ["TERM"]
    s.reactor.advance(1)
    assert stuck.signals == ["TERM", "KILL"]
    ended(s, 0)
    assert not os.path.exists(s.directory)


def test_no_restart_once_stopping(tmp_path: Path) -> None:
    s = supervisor(tmp_path, swarm_file=None)
    ended(s, 0)  # dies just before the stop: its restart is already scheduled
    s.stopService()
    ended(s, 1)
    s.reactor.advance(sup.BACKOFF_MAX)
    assert len(s.reactor.spawned) == 2


def snapshot_with(addr_byte: int, key: bytes) -> bytes:
    store = SwarmStore(lambda: 0.0)
    store.put(key, bytes([10, 0, 0, addr_byte, 0x1A, 0xE1]), b"-XX0001-" + b"0" * 12, True, 100)
    return b"".join(snapshot.dump(store))


def test_stop_merges_the_workers_snapshots_into_one(tmp_path: Path) -> None:
    path = tmp_path / "swarms"
    s = supervisor(tmp_path, swarm_file=str(path))
    parts = [snapshot_with(1, b"a" * 20), snapshot_with(2, b"b" * 20)]
    for i, part in enumerate(parts):
        Path(f"{path}.{i}").write_bytes(part)
    s.stopService()
    ended(s, 0)
    ended(s, 1)
    merged = path.read_bytes()
    assert merged == snapshot.merge(parts)
    store = SwarmStore(lambda: 0.0)
    assert snapshot.load(merged, store, cutoff=0) == 2
    assert sorted(store.swarms) == [b"a" * 20, b"b" * 20]
    assert not Path(f"{path}.0").exists() and not Path(f"{path}.1").exists()


def test_a_worker_without_a_snapshot_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "swarms"
    s = supervisor(tmp_path, swarm_file=str(path))
    Path(f"{path}.1").write_bytes(snapshot_with(1, b"c" * 20))
    s._merge_snapshots()
    assert path.read_bytes() == snapshot.merge([snapshot_with(1, b"c" * 20)])


def test_no_snapshots_leave_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "swarms"
    path.write_bytes(b"old")
    supervisor(tmp_path, swarm_file=str(path))._merge_snapshots()
    assert path.read_bytes() == b"old"


def test_a_damaged_snapshot_stops_the_merge_and_keeps_the_parts(tmp_path: Path) -> None:
    path = tmp_path / "swarms"
    path.write_bytes(b"old")
    s = supervisor(tmp_path, swarm_file=str(path))
    Path(f"{path}.0").write_bytes(snapshot_with(1, b"a" * 20))
    Path(f"{path}.1").write_bytes(b"garbage")
    s._merge_snapshots()
    assert path.read_bytes() == b"old"
    assert Path(f"{path}.0").exists() and Path(f"{path}.1").exists()


@pytest.mark.parametrize("workers", [1, 3])
def test_worker_count_follows_the_config(tmp_path: Path, workers: int) -> None:
    s = supervisor(tmp_path, workers=workers)
    assert [Seat.from_env(p["env"]).workers for p in s.reactor.spawned] == [workers] * workers  # type: ignore[union-attr]
