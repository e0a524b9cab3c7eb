"""The tracker's lifecycle: load the catalog before listening, flush queued writes and expire
peers while running, and lose nothing queued on a clean stop."""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.interfaces import IReactorCore, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from weightless.metrics import Stats
from weightless.registry.store import IStore, Rejected, Snapshot
from weightless.state import pendingfile
from weightless.state.swarmfile import SwarmFile
from weightless.tracker.accounting import Accounting, PendingWrites
from weightless.tracker.catalog import Catalog
from weightless.tracker.swarm import SwarmStore

FLUSH_EVERY = 5.0
SWEEP_CHUNK = 1_000  # peers scanned between looks at the time: about a millisecond at worst
SWEEP_SLICE = 0.002  # seconds of expiry work per reactor turn


class Maintenance:
    """Batched writes to the store and sliced expiry of peers, on the reactor's clock."""

    log = Logger()

    def __init__(
        self,
        store: IStore,
        pending: PendingWrites,
        swarms: SwarmStore,
        accounting: Accounting | None,
        peer_ttl: int,
        reactor: IReactorTime,
        timer: Callable[[], float] = perf_counter,
        stats: Stats | None = None,
    ) -> None:
        self.store = store
        self.stats = stats if stats is not None else Stats()
        self.pending = pending
        self.swarms = swarms
        self.accounting = accounting
        self.peer_ttl = peer_ttl
        self.reactor = reactor
        self.timer = timer
        self._lock = DeferredLock()
        self._sweeping = False
        self._loops: list[LoopingCall] = []

    def start(self) -> None:
        for fn, every in (
            (self.flush, FLUSH_EVERY),
            (self.sweep, max(1.0, min(60.0, self.peer_ttl / 4))),
        ):
            loop = LoopingCall(fn)
            loop.clock = self.reactor
            loop.start(every, now=False)
            self._loops.append(loop)

    def stop(self) -> Deferred[None]:
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        return self.flush()

    def flush(self) -> Deferred[None]:
        """Send what is queued, one batch at a time; a failed batch goes back into the queue
        for the next try."""
        return self._lock.run(self._flush_batch)

    async def _flush_batch(self) -> None:
        if not self.pending:
            return
        batch = self.pending.take()
        unwritten = await self._write(batch)
        if unwritten:
            self.pending.restore(unwritten)

    async def _write(self, batch: PendingWrites) -> PendingWrites | None:
        """Write ``batch``; returns what the store could not take for now (to try again).
        A batch the database refuses is cut in halves until the refused rows are alone: those
        are set aside (logged, counted), every other row is written in this same flush."""
        try:
            await self.store.flush(batch)
        except Rejected as e:
            if len(batch) <= 1:
                self._set_aside(batch, e)
                return None
            first, second = batch.halves()
            kept = await self._write(first)
            if kept is not None:  # the database is gone meanwhile: keep the rest too
                kept.restore(second)
                return kept
            return await self._write(second)
        except Exception as e:
            self.log.warn("flush to the store failed, kept for the next try: {e}", e=e)
            return batch
        return None

    def _set_aside(self, row: PendingWrites, reason: Rejected) -> None:
        self.stats.store_rejected += 1
        self.log.error(
            "the database refused a write, set aside: completions {c}, traffic {t}: {e}",
            c=row.completions,
            t=row.traffic,
            e=reason,
        )

    def sweep(self) -> None:
        """Start an expiry pass, run in slices so the reactor never pauses for long."""
        if self._sweeping:
            return
        self._sweeping = True
        self._sweep_slice()

    def _sweep_slice(self) -> None:
        if self.sweep_slice():
            self._sweeping = False
        else:
            self.reactor.callLater(0, self._sweep_slice)

    def sweep_slice(self) -> bool:
        """About SWEEP_SLICE seconds of expiry; True when the pass is over."""
        now = self.reactor.seconds()
        cutoff = int(now - self.peer_ttl)
        deadline = self.timer() + SWEEP_SLICE
        if self.accounting is not None:
            self.accounting.expire(now, SWEEP_CHUNK)
        while not self.swarms.expire(cutoff, SWEEP_CHUNK):
            if self.timer() >= deadline:
                return False
        return True


class TrackerService(MultiService):
    """Parent of the listeners: they start only once the catalog is loaded."""

    log = Logger()

    def __init__(
        self,
        store: IStore,
        catalog: Catalog,
        maintenance: Maintenance,
        reactor: IReactorCore,
        on_fatal: Callable[[Failure], None],
        swarm_file: SwarmFile | None = None,
        pending_file: str | None = None,
        baselines_from: str | None = None,
    ) -> None:
        """``baselines_from``: where kept accounting baselines are taken from at start, when
        not where this process keeps them at a stop (one worker of several takes its share)."""
        super().__init__()
        self.store = store
        self.catalog = catalog
        self.maintenance = maintenance
        self.swarm_file = swarm_file
        self.pending_file = pending_file
        self.baselines_from = baselines_from
        self.reactor = reactor
        self.on_fatal = on_fatal
        self.ready: Deferred[None] | None = None

    def privilegedStartService(self) -> None:
        """Listeners bind in startService, after the catalog is loaded, so that no announce is
        answered from an empty catalog (bind low ports with CAP_NET_BIND_SERVICE instead)."""

    def startService(self) -> None:
        self.running = 1
        self.ready = Deferred.fromCoroutine(self._boot())

    async def _boot(self) -> None:
        """Serve, or exit non-zero with one line: never hang without listening."""
        try:
            await self.store.open()
            snapshot = await self.store.snapshot()
            self._serve(snapshot)
        except Exception:
            self._fatal(Failure())

    def _serve(self, snapshot: Snapshot) -> None:
        self.catalog.load(snapshot.entries, snapshot.blocked)
        self.log.info(
            "catalog loaded: {n} entries, {b} blocked hashes",
            n=len(self.catalog.entries),
            b=len(snapshot.blocked),
        )
        if self.swarm_file is not None:
            self.swarm_file.restore()
        if self.pending_file is not None:
            pendingfile.restore_pending(self.maintenance.pending, self.pending_file)
            if self.maintenance.accounting is not None:
                pendingfile.restore_baselines(
                    self.maintenance.accounting,
                    self.baselines_from or f"{self.pending_file}-baselines",
                )
        MultiService.startService(self)
        self.maintenance.start()

    def _fatal(self, failure: Failure) -> None:
        self.log.failure("could not start: {e}", failure, e=failure.getErrorMessage())
        self.on_fatal(failure)

    def stopService(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._shutdown())

    async def _shutdown(self) -> None:
        if self.ready is not None:
            await self.ready
        await MultiService.stopService(self)
        if self.swarm_file is not None:
            try:
                self.swarm_file.save()
            except OSError:
                self.log.failure("could not save the swarm snapshot")
        await self.maintenance.stop()
        if self.pending_file is not None:
            try:
                pendingfile.save_pending(self.maintenance.pending, self.pending_file)
                if self.maintenance.accounting is not None:
                    pendingfile.save_baselines(
                        self.maintenance.accounting, f"{self.pending_file}-baselines"
                    )
            except OSError:
                self.log.failure("could not keep the state the database did not take")
        await self.store.close()
