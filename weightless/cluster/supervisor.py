"""``--workers N``: the twistd process binds the sockets and runs N workers that share them.

Each worker gets its own socket of a SO_REUSEPORT group (HTTP and UDP), so the kernel spreads
connections and datagrams over them; a BPF program steers UDP announces to the worker owning
their swarm. A worker that dies is restarted with backoff, keeping its socket. SIGTERM stops
every worker cleanly; the workers' swarm snapshots are merged into one file for the next start."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from contextlib import suppress
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from weightless.cluster import sharedcount
from weightless.cluster.owner import attach_steering, owner_of
from weightless.cluster.seat import ENV, Seat
from weightless.cluster.sharedlimit import table_size
from weightless.config import Config, http_address
from weightless.state.atomic import PUBLIC, write_atomic
from weightless.state.keyfile import load_or_create
from weightless.state.pendingfile import split_baselines
from weightless.tracker.snapshot import SnapshotError, merge

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
HEALTHY_AFTER = 30.0  # a worker up this long resets its backoff
STOP_GRACE = 25.0
TWISTD = "from twisted.scripts.twistd import run; run()"


def reuseport_sockets(
    kind: int, host: str, port: int, count: int, backlog: int = 1024
) -> tuple[list[socket.socket], int]:
    """``count`` sockets bound to one address in a SO_REUSEPORT group, and their family."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets = []
    for _ in range(count):
        s = socket.socket(family, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind((host, port))
        if kind == socket.SOCK_STREAM:
            s.listen(backlog)
        s.setblocking(False)
        sockets.append(s)
        port = s.getsockname()[1]  # port 0: the others join the port the first one got
    return sockets, family


class _Worker(ProcessProtocol):
    def __init__(self, supervisor: Supervisor, index: int) -> None:
        self.supervisor = supervisor
        self.index = index
        self.ended: Deferred[None] = Deferred()

    def processEnded(self, reason: Failure) -> None:
        self.supervisor.ended(self, reason)
        self.ended.callback(None)


class Supervisor(Service):
    log = Logger()

    def __init__(self, config: Config, argv: list[str], reactor: Any) -> None:
        self.config = config
        self.argv = argv
        self.reactor = reactor
        self.workers: dict[int, _Worker] = {}
        self.backoff: dict[int, float] = {}
        self.started_at: dict[int, float] = {}
        self.stopping = False
        self.directory = ""
        self.http: list[socket.socket] = []
        self.udp: list[socket.socket] = []

    def startService(self) -> None:
        super().startService()
        n = self.config.workers
        self.directory = tempfile.mkdtemp(prefix="weightless-")
        host, port = http_address(self.config.http)
        self.http, http_family = reuseport_sockets(socket.SOCK_STREAM, host, port, n)
        self.http_family = int(http_family)
        self.udp_family: int = socket.AF_INET6
        if self.config.udp is not None:
            self.udp, udp_family = reuseport_sockets(
                socket.SOCK_DGRAM, self.config.udp_interface, self.config.udp, n
            )
            self.udp_family = int(udp_family)
            attach_steering(self.udp[0], n)
        with open(os.path.join(self.directory, "ratelimit"), "wb") as f:
            f.truncate(table_size())
        with open(os.path.join(self.directory, "connections"), "wb") as f:
            f.truncate(sharedcount.table_size(n))
        self.secret = load_or_create(self.config.udp_key_file).hex()
        # each worker takes the kept baselines of the swarms it owns
        split_baselines(self.config.baselines_file, n, lambda key: owner_of(key, n))
        self.log.info(
            "supervisor {pid}: {n} workers on HTTP {http} and UDP {udp}",
            pid=os.getpid(),
            n=n,
            http=self.http[0].getsockname(),
            udp=self.udp[0].getsockname() if self.udp else "off",
        )
        for i in range(n):
            self.spawn(i)

    def spawn(self, index: int) -> None:
        seat = Seat(
            index=index,
            workers=self.config.workers,
            directory=self.directory,
            http_fd=self.http[index].fileno(),
            http_family=self.http_family,
            udp_fd=self.udp[index].fileno() if self.udp else None,
            udp_family=self.udp_family,
            secret=self.secret,
            supervisor=os.getpid(),
        )
        env = dict(os.environ)
        env[ENV] = seat.to_env()
        fds: dict[int, int | str] = {0: 0, 1: 1, 2: 2, seat.http_fd: seat.http_fd}
        if seat.udp_fd is not None:
            fds[seat.udp_fd] = seat.udp_fd
        worker = _Worker(self, index)
        args = [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "weightless", *self.argv]
        self.reactor.spawnProcess(worker, sys.executable, args, env=env, childFDs=fds)
        self.workers[index] = worker
        self.started_at[index] = self.reactor.seconds()

    def ended(self, worker: _Worker, reason: Failure) -> None:
        if self.workers.get(worker.index) is worker:
            del self.workers[worker.index]
        if self.stopping:
            return
        index = worker.index
        up = self.reactor.seconds() - self.started_at.get(index, 0)
        delay = BACKOFF_FIRST if up > HEALTHY_AFTER else self.backoff.get(index, BACKOFF_FIRST)
        self.backoff[index] = min(BACKOFF_MAX, delay * 2)
        self.log.warn(
            "worker {i} ended ({why}); restarting it in {d:.1f} s",
            i=index,
            why=reason.getErrorMessage(),
            d=delay,
        )
        self.reactor.callLater(delay, self._respawn, index)

    def _respawn(self, index: int) -> None:
        if not self.stopping and index not in self.workers:
            self.spawn(index)

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        self.stopping = True
        waiting = [w.ended for w in self.workers.values()]
        for worker in list(self.workers.values()):
            self._signal(worker, "TERM")
        kill = self.reactor.callLater(STOP_GRACE, self._kill_all)
        d = DeferredList(waiting)

        def done(_: Any) -> None:
            if kill.active():
                kill.cancel()
            self._merge_snapshots()
            for s in self.http + self.udp:
                s.close()
            shutil.rmtree(self.directory, ignore_errors=True)

        return d.addCallback(done)

    def _kill_all(self) -> None:
        for worker in list(self.workers.values()):
            self.log.warn("worker {i} did not stop in time: killing it", i=worker.index)
            self._signal(worker, "KILL")

    @staticmethod
    def _signal(worker: _Worker, name: str) -> None:
        transport = worker.transport
        if transport is not None:
            with suppress(ProcessExitedAlready):  # it is already gone
                transport.signalProcess(name)

    def _merge_snapshots(self) -> None:
        """Join the workers' snapshot files into the one the next start reads."""
        path = self.config.swarm_file
        if path is None:
            return
        parts = [f"{path}.{i}" for i in range(self.config.workers)]
        chunks = []
        for part in parts:
            try:
                with open(part, "rb") as f:
                    chunks.append(f.read())
            except FileNotFoundError:
                continue
        if not chunks:
            return
        try:
            data = merge(chunks)
        except SnapshotError as e:
            self.log.warn("not merging swarm snapshots: {e}", e=e)
            return
        write_atomic(path, data, PUBLIC)
        for part in parts:
            if os.path.exists(part):
                os.unlink(part)
        self.log.info("merged {n} worker snapshots into {path}", n=len(chunks), path=path)
