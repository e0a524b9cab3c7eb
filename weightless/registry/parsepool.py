"""Long parses of what clients send (a .torrent upload, a JSON submission, the /meta view of a
stored file) in a process of their own, so that one uploader never holds up the announces.

A parse of hostile bencode can take seconds of pure Python, holding the interpreter lock the
whole time: a thread would still stall the reactor. `ParsePool` runs each parse in a child
process (started by the forkserver, so it inherits no listening socket), at a lower CPU
priority than the tracker, and keeps a bounded number waiting: beyond it a parse is refused at
once with `Busy` (a 503 with Retry-After), never queued without end.

The pool is a Twisted service: started with the tracker (its child a few seconds later, or at
the first upload) and shut down with it (a parse in flight is cancelled, the child stopped).
A child also leaves by itself when the tracker process is gone, even killed."""

from __future__ import annotations

import gc
import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = ["PROCESSES", "WAITING", "Busy", "ParsePool"]

T = TypeVar("T")
PROCESSES = 1  # child processes per tracker process (per worker with --workers N)
WAITING = 4  # parses that may wait for a child, beyond those running
NICENESS = 10  # how much lower the children's CPU priority is than the tracker's
RETRY_AFTER = 5  # seconds a refused client is told to wait
START_AFTER = 5.0  # seconds after the tracker starts serving: not in the CPU rush of a start
CHILD_GRACE = 5.0  # seconds a stopped child has to exit before it is killed
# modules the forkserver imports once, so that a new child starts parsing at once
PRELOAD = ["weightless.registry.entries"]


class Busy(Exception):
    """Too many parses running or waiting (or the child died): try again later. The message
    can go to a client as is; ``retry_after`` is in seconds."""

    retry_after = RETRY_AFTER


def _child_started(tracker: int) -> None:
    """In each child: a lower CPU priority, Ctrl-C left to the tracker, and an exit as soon as
    the tracker process is gone, even killed. (Its parent is the forkserver, which waits for
    its children before it leaves: without this, a killed tracker would leave both behind.)"""
    os.nice(NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(tracker,), daemon=True).start()


def _exit_with(tracker: int) -> None:
    try:
        gone = os.pidfd_open(tracker)  # readable once the process has exited (Linux 5.3)
    except (AttributeError, OSError):
        while _alive(tracker):
            time.sleep(1.0)
    else:
        select.select([gone], [], [])
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ready() -> None:
    """A no-op: run once a child is up."""


def _start(processes: int) -> ProcessPoolExecutor:
    """A pool whose child is up and ready (on a thread: starting the forkserver and a child
    that imports the parsers blocks for as long as that takes)."""
    context = multiprocessing.get_context(
        "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    )
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload(PRELOAD)
    executor = ProcessPoolExecutor(
        processes, mp_context=context, initializer=_child_started, initargs=(os.getpid(),)
    )
    try:
        executor.submit(_ready).result()
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    return executor


def _collect(_: object) -> None:
    gc.collect()


def _shut_down(executor: Any, children: list[Any]) -> None:
    """Wait for ``executor`` to shut down and for each of its child processes (already sent
    SIGTERM) to be gone: killed after `CHILD_GRACE` seconds, so a stop ends with no child."""
    executor.shutdown(wait=True)
    for child in children:
        child.join(CHILD_GRACE)
        if child.is_alive():
            child.kill()
            child.join(CHILD_GRACE)


class ParsePool(Service):
    """``run(fn, *args)``: ``fn(*args)`` in a child process, as a Deferred (a `Runner` for
    `weightless.registry.service.RegistryService`). ``fn`` and its arguments and result are
    pickled: a module-level function of plain values. What ``fn`` raises comes back as it is;
    `Busy` when ``processes + waiting`` parses are already in flight.

    The child is started on the reactor's thread pool, `START_AFTER` seconds after the
    service starts (or at the first parse, if that comes first or the child died): nothing
    here blocks the reactor, and a tracker's start is not slowed by its child's."""

    log = Logger()

    def __init__(self, reactor: Any, processes: int = PROCESSES, waiting: int = WAITING) -> None:
        self.reactor = reactor
        self.processes = processes
        self.limit = processes + waiting
        self.in_flight = 0
        self._executor: ProcessPoolExecutor | None = None
        self._starting: list[Deferred[ProcessPoolExecutor]] | None = None
        self._stopped = False
        self._warming: IDelayedCall | None = None

    def run(self, fn: Callable[..., T], *args: Any) -> Deferred[T]:
        if self.in_flight >= self.limit:
            return fail(Busy("the server is busy parsing other uploads: try again shortly"))
        self.in_flight += 1
        d = self._ready().addCallback(self._submit, fn, args)

        def done(result: Any) -> Any:
            self.in_flight -= 1
            return result

        return d.addBoth(done)

    def _ready(self) -> Deferred[ProcessPoolExecutor]:
        """The executor, once its child is up."""
        if self._executor is not None:
            return succeed(self._executor)
        waiter: Deferred[ProcessPoolExecutor] = Deferred()
        if self._starting is None:
            self._starting = []
            pool = self.reactor.getThreadPool()
            deferToThreadPool(self.reactor, pool, _start, self.processes).addBoth(self._started)
        self._starting.append(waiter)
        return waiter

    def _started(self, result: ProcessPoolExecutor | Failure) -> None:
        waiting, self._starting = self._starting or [], None
        if isinstance(result, Failure):
            self.log.warn("upload parser did not start: {e}", e=result.getErrorMessage())
            for waiter in waiting:
                waiter.errback(Busy("the upload parser is not available: try again shortly"))
            return
        if not self.running and self._stopped:
            result.shutdown(wait=False, cancel_futures=True)  # stopped while it started
            for waiter in waiting:
                waiter.errback(Busy("the server is stopping"))
            return
        self._executor = result
        for waiter in waiting:
            waiter.callback(result)

    def _submit(
        self, executor: ProcessPoolExecutor, fn: Callable[..., T], args: tuple[Any, ...]
    ) -> Deferred[T]:
        try:
            future = executor.submit(fn, *args)
        except (BrokenProcessPool, RuntimeError) as e:  # the child died, or shut down
            self._discard(executor, e)
            return fail(Busy("the upload parser is restarting: try again shortly"))
        d: Deferred[T] = Deferred()
        future.add_done_callback(
            lambda f: self.reactor.callFromThread(self._settle, executor, f, d)
        )
        return d

    def _settle(self, executor: ProcessPoolExecutor, future: Future[T], d: Deferred[T]) -> None:
        if future.cancelled():
            d.errback(Busy("the server is stopping"))
            return
        error = future.exception()
        if error is None:
            d.callback(future.result())
        elif isinstance(error, BrokenProcessPool):
            self._discard(executor, error)
            d.errback(Busy("the upload parser stopped: try again shortly"))
        else:
            d.errback(error)

    def _discard(self, executor: ProcessPoolExecutor, error: BaseException) -> None:
        """A child that died (killed, out of memory) breaks its executor: the next parse
        starts a new one."""
        if self._executor is executor:
            self.log.warn("upload parser: {e}; starting a new one", e=str(error) or repr(error))
            self._executor = None
            executor.shutdown(wait=False, cancel_futures=True)

    def startService(self) -> None:
        super().startService()
        self._warming = self.reactor.callLater(START_AFTER, self._warm)

    def _warm(self) -> None:
        self._warming = None
        if self.running:
            self._ready().addErrback(lambda _: None)  # logged by _started

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._stopped = True
        if self._warming is not None and self._warming.active():
            self._warming.cancel()
        executor, self._executor = self._executor, None
        if executor is None:
            return succeed(None)
        children = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for child in children:  # a parse in flight is of no more use: not waited for
            child.terminate()
        stopped = deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), _shut_down, executor, children
        )
        # the executor's queues hold named semaphores: released now, not left for the
        # resource tracker to find at exit
        return stopped.addCallback(_collect)
