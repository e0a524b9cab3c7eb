"""Usage sync to a hub: per-user traffic (passkey accounting) sent every 10 s as ``POST
{hub}/api/internal/usage-sync``, the original's contract with its idempotency fix.

Every flush of queued writes also keeps each user's traffic in the registry database (the
store's ``usage_sync``); each tick folds what came since the last one into a batch with a new
``sync_id``, stored, and sends the waiting batches in order, one at a time. Trackers sharing
one database fold alike; one of them, holding a lease it renews each tick, sends. A batch keeps its
``sync_id`` on every retry, across restarts too, and is dropped only after a 200:

- 403: logged, kept, nothing more is sent until the tracker restarts (a wrong key);
- another 4xx: logged, set aside in the database (never sent again), the next one goes;
- 5xx, no answer within 5 s, no connection: sent again at the next tick, same ``sync_id``.

With several workers every worker's flushes write into the one database, and one process
(worker 0) batches and sends."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import suppress
from io import BytesIO
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.client import FileBodyProducer
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent

from weightless.metrics import Stats
from weightless.registry.store import IStore
from weightless.registry.usage import request_body

SYNC_EVERY = 10.0  # seconds between batches
HUB_TIMEOUT = 5.0  # seconds for the hub's whole answer
SYNC_PATH = "/api/internal/usage-sync"
WAITING_COUNTED = 10_000  # batches looked at for the "waiting" gauge


def new_sync_id() -> str:
    """32 lowercase hex characters, random."""
    return uuid.uuid4().hex


class HubSync(Service):
    log = Logger()

    def __init__(
        self,
        store: IStore,
        hub_url: str,
        key: str | None,
        agent: IAgent,
        clock: IReactorTime,
        stats: Stats,
        every: float = SYNC_EVERY,
        timeout: float = HUB_TIMEOUT,
        sync_id: Callable[[], str] = new_sync_id,
    ) -> None:
        self.store = store
        self.url = (hub_url.rstrip("/") + SYNC_PATH).encode("ascii")
        self.key = key
        self.agent = agent
        self.clock = clock
        self.stats = stats
        self.every = every
        self.timeout = timeout
        self.sync_id = sync_id
        self.forbidden = False  # a 403: nothing more until a restart
        # trackers sharing one database: the one holding the lease sends (renewed each tick)
        self.sender = new_sync_id()
        self.lease = 3 * every
        self._loop: LoopingCall | None = None
        self._tick: Deferred[None] | None = None

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self.tick)
        self._loop.clock = self.clock
        self._loop.start(self.every, now=False)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        # a batch on its way finishes (within the timeout); what it did not send waits
        if self._tick is not None:
            await self._tick
        try:  # the next process (a restart, another tracker) sends at once
            await self.store.usage_release(self.sender)
        except Exception as e:
            self.log.warn("usage sync: could not release the sending lease: {e}", e=e)

    def tick(self) -> Deferred[None]:
        """Fold new traffic into a batch and send what waits, oldest first."""
        self._tick = Deferred.fromCoroutine(self._sync())
        return self._tick

    async def _sync(self) -> None:
        if self.forbidden:
            return
        try:
            sending = await self.store.usage_tick(self.sync_id(), self.sender, self.lease)
        except Exception as e:
            self.log.warn("usage sync: the database did not answer: {e}", e=e)
            return
        if not sending:  # another tracker on this database sends
            return
        started = self.clock.seconds()
        while self.clock.seconds() - started < self.lease / 2:  # within the lease
            try:
                waiting = await self.store.usage_waiting(WAITING_COUNTED)
            except Exception as e:
                self.log.warn("usage sync: could not read the waiting batches: {e}", e=e)
                return
            self.stats.hub_waiting = len(waiting)
            if not waiting:
                return
            batch, sync_id, deltas = waiting[0]
            status = await self._post(request_body(sync_id, deltas))
            if status == 200:
                await self._done(batch, None)
                self.stats.hub_sent += 1
                self.stats.hub_waiting -= 1
                continue
            if status == 403:
                self.forbidden = True
                self.log.error(
                    "usage sync: the hub refused the key (403): batch {id} kept, nothing more "
                    "is sent until a restart",
                    id=sync_id,
                )
                return
            if status is not None and 400 <= status < 500:
                self.log.error(
                    "usage sync: the hub refused batch {id} ({status}): set aside in the database",
                    id=sync_id,
                    status=status,
                )
                await self._done(batch, status)
                self.stats.hub_set_aside += 1
                continue
            self.stats.hub_retried += 1
            self.log.warn(
                "usage sync: batch {id} not taken ({why}): sent again at the next tick",
                id=sync_id,
                why="no answer" if status is None else f"status {status}",
            )
            return

    async def _done(self, batch: int, status: int | None) -> None:
        try:
            await self.store.usage_done(batch, status)
        except Exception as e:  # sent again later: the hub knows its sync_id
            self.log.warn("usage sync: could not record batch {b}: {e}", b=batch, e=e)

    async def _post(self, body: bytes) -> int | None:
        """The hub's status for ``body``, or None: no connection, no answer in time."""
        headers = Headers({b"Content-Type": [b"application/json"]})
        if self.key is not None:
            headers.addRawHeader(b"X-Weightless-Key", self.key.encode("utf-8"))

        async def exchange() -> int:
            response: Any = await self.agent.request(
                b"POST", self.url, headers, FileBodyProducer(BytesIO(body))
            )
            # the status is the answer; a body cut short changes nothing
            with suppress(Exception):
                await _discard_body(response)
            return int(response.code)

        d = Deferred.fromCoroutine(exchange())
        d.addTimeout(self.timeout, self.clock)
        try:
            return await d
        except Exception as e:
            self.log.debug("usage sync: {e}", e=e)
            return None


class _Discard(Protocol):
    """Reads a response body into nothing; ``done`` fires when it ends (however it ends)."""

    def __init__(self, done: Deferred[None]) -> None:
        self.done = done

    def dataReceived(self, data: bytes) -> None:
        pass

    def connectionLost(self, reason: Any = None) -> None:
        if not self.done.called:
            self.done.callback(None)


def _discard_body(response: Any) -> Deferred[None]:
    """The end of ``response``'s body, unread; cancelling it (the timeout) drops the
    connection, so a hub streaming without end is cut off."""
    protocol: _Discard

    def cancel(_: Deferred[None]) -> None:
        transport: Any = protocol.transport  # the body's producer (IPushProducer)
        if transport is not None:
            transport.stopProducing()

    done: Deferred[None] = Deferred(cancel)
    protocol = _Discard(done)
    response.deliverBody(protocol)
    return done
