"""Worker-to-worker messages over Unix sockets: requests with answers, and one-way notes.

A frame is a 4-byte length, a 1-byte kind, a 4-byte request id (0 for a one-way note) and the
payload. Each worker listens on ``<dir>/worker-<i>.sock`` and connects to the others lazily."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.internet.interfaces import IListeningPort, IReactorUNIX
from twisted.internet.protocol import ClientFactory, Factory, connectionDone
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure

ANSWER = 0
FAILED = 255
_HEAD = struct.Struct(">BI")
REQUEST_TIMEOUT = 5.0
EXPIRE_EVERY = 0.5
CONNECT_PATIENCE = 3.0  # seconds a starting worker has to open its socket
RETRY_EVERY = 0.05

Handler = Callable[[bytes], "bytes | Deferred[bytes] | None"]


class PeerGone(Exception):
    """The other worker is not there (restarting, or gone) or did not answer in time."""


def socket_path(directory: str, index: int) -> str:
    return os.path.join(directory, f"worker-{index}.sock")


class Link(Int32StringReceiver):
    """One connection between two workers; either end may send requests on it."""

    MAX_LENGTH = 64 * 1024 * 1024
    log = Logger()

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.waiting: dict[int, tuple[Deferred[bytes], float]] = {}  # rid -> answer, deadline

    def stringReceived(self, frame: bytes) -> None:
        kind, rid = _HEAD.unpack_from(frame)
        payload = frame[_HEAD.size :]
        if kind in (ANSWER, FAILED):
            found = self.waiting.pop(rid, None)
            if found is not None:
                d = found[0]
                if kind == ANSWER:
                    d.callback(payload)
                else:
                    d.errback(PeerGone(payload.decode("utf-8", "replace")))
            return
        handler = self.mesh.handlers.get(kind)
        if handler is None:
            self._answer(rid, FAILED, b"unknown message kind %d" % kind)
            return
        try:
            result = handler(payload)
        except Exception:
            if rid:
                self._failed(rid, Failure())
            else:
                self.log.failure("handling a note failed")
            return
        if not isinstance(result, Deferred):
            if rid:  # the usual case, answered at once: no Deferred on the way
                self._answer(rid, ANSWER, result or b"")
            return
        if rid:
            result.addCallbacks(
                lambda answer: self._answer(rid, ANSWER, answer or b""),
                lambda f: self._failed(rid, f),
            )
        else:
            result.addErrback(lambda f: self.log.failure("handling a note failed", f))

    def _failed(self, rid: int, failure: Failure) -> None:
        self.log.failure("answering a request from another worker failed", failure)
        self._answer(rid, FAILED, failure.getErrorMessage().encode("utf-8", "replace"))

    def _answer(self, rid: int, kind: int, payload: bytes) -> None:
        if self.transport is not None:
            self.sendString(_HEAD.pack(kind, rid) + payload)

    def request(self, kind: int, payload: bytes, rid: int, deadline: float) -> Deferred[bytes]:
        def forget(_: object) -> None:
            self.waiting.pop(rid, None)

        d: Deferred[bytes] = Deferred(forget)
        self.waiting[rid] = (d, deadline)
        self.sendString(_HEAD.pack(kind, rid) + payload)
        return d

    def expire(self, now: float) -> None:
        """Fail the requests that were not answered in time."""
        late = [rid for rid, (_, deadline) in self.waiting.items() if deadline < now]
        for rid in late:
            d, _ = self.waiting.pop(rid)
            d.errback(PeerGone(f"no answer from the worker within {REQUEST_TIMEOUT:g} s"))

    def note(self, kind: int, payload: bytes) -> None:
        self.sendString(_HEAD.pack(kind, 0) + payload)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        waiting, self.waiting = self.waiting, {}
        for d, _ in waiting.values():
            d.errback(PeerGone("connection to the worker was lost"))
        self.mesh.lost(self)


class Mesh:
    """This worker's links to the other workers."""

    def __init__(self, index: int, workers: int, directory: str, reactor: Any) -> None:
        self.index = index
        self.workers = workers
        self.directory = directory
        self.reactor = reactor
        self.handlers: dict[int, Handler] = {}
        self.links: dict[int, Link] = {}
        self._waiters: dict[int, list[Deferred[Link]]] = {}
        self._rid = 0
        self._port: IListeningPort | None = None
        self._expiry: LoopingCall | None = None

    def listen(self) -> None:
        path = socket_path(self.directory, self.index)
        if os.path.exists(path):
            os.unlink(path)
        mesh = self

        class Accept(Factory):
            def buildProtocol(self, addr: Any) -> Link:
                return Link(mesh)

        unix: IReactorUNIX = self.reactor
        self._port = unix.listenUNIX(path, Accept(), mode=0o600)
        # one timer for every request's deadline, not a timer per request
        self._expiry = LoopingCall(self._expire)
        self._expiry.clock = self.reactor
        self._expiry.start(EXPIRE_EVERY, now=False)

    def _expire(self) -> None:
        now = self.reactor.seconds()
        for link in list(self.links.values()):
            link.expire(now)

    def close(self) -> Deferred[None] | None:
        if self._expiry is not None and self._expiry.running:
            self._expiry.stop()
        for link in list(self.links.values()):
            if link.transport is not None:
                link.transport.loseConnection()
        if self._port is not None:
            return self._port.stopListening()
        return None

    def lost(self, link: Link) -> None:
        for index, known in list(self.links.items()):
            if known is link:
                del self.links[index]

    def request(self, index: int, kind: int, payload: bytes) -> Deferred[bytes]:
        """Ask worker ``index``; fails with PeerGone when it cannot answer in time."""
        self._rid = self._rid % 0xFFFFFFFF + 1
        rid = self._rid
        deadline = self.reactor.seconds() + REQUEST_TIMEOUT
        link = self.links.get(index)
        if link is not None:
            return link.request(kind, payload, rid, deadline)
        return self._connect(index).addCallback(
            lambda link: link.request(kind, payload, rid, deadline)
        )

    def note(self, index: int, kind: int, payload: bytes) -> None:
        """Tell worker ``index`` something, without waiting (lost if it is down)."""
        link = self.links.get(index)
        if link is not None:
            link.note(kind, payload)
            return
        self._connect(index).addCallbacks(lambda link: link.note(kind, payload), lambda f: None)

    def broadcast(self, kind: int, payload: bytes) -> None:
        for index in range(self.workers):
            if index != self.index:
                self.note(index, kind, payload)

    def _connect(self, index: int) -> Deferred[Link]:
        """A link to worker ``index``; callers at the same time share one attempt. A worker
        that is starting (or restarting) gets a few more tries before it counts as gone."""
        d: Deferred[Link] = Deferred()
        waiters = self._waiters.get(index)
        if waiters is not None:
            waiters.append(d)
            return d
        self._waiters[index] = [d]
        self._dial(index, self.reactor.seconds() + CONNECT_PATIENCE)
        return d

    def _dial(self, index: int, deadline: float) -> None:
        mesh = self

        class Dial(ClientFactory):
            def buildProtocol(self, addr: Any) -> Link:
                return Link(mesh)

        def connected(link: Link) -> None:
            self.links[index] = link
            for waiter in self._waiters.pop(index, []):
                waiter.callback(link)

        def failed(failure: Failure) -> None:
            if self.reactor.seconds() < deadline:
                self.reactor.callLater(RETRY_EVERY, self._dial, index, deadline)
                return
            for waiter in self._waiters.pop(index, []):
                waiter.errback(PeerGone(f"worker {index} is not reachable"))

        endpoint = UNIXClientEndpoint(self.reactor, socket_path(self.directory, index), 2)
        endpoint.connect(Dial()).addCallbacks(connected, failed)
