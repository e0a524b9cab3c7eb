"""Swarms kept in Redis (or Valkey), shared by every tracker process and machine that uses it.

One announce is one script run (EVALSHA, or EVAL once when the server does not know the script
yet): no scan, one round trip. The connection speaks txredisapi's protocol (replies parsed by
hiredis) and is opened here, and reopened every half second while Redis is away, so that it is
back within a second of Redis; while there is none, every call fails at once with
`SwarmStoreUnavailable` instead of waiting in a queue. Replies that stop coming for two seconds
(a hung Redis, a cut network) close the connection, which fails the calls waiting on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from random import getrandbits as _luck
from typing import Any

import txredisapi
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, FirstError, fail, gatherResults
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from weightless.config import redis_address
from weightless.sharedswarms.scripts import (
    ANNOUNCE,
    ANNOUNCE_ARGS,
    COUNTS,
    COUNTS_ARGS,
    sha1,
    swarm_keys,
    swarm_prefix,
)
from weightless.wire.numbers import EVENT_COMPLETED, EVENT_STOPPED

REPLY_TIMEOUT = 2.0  # seconds Redis has to answer before the connection counts as gone
CONNECT_TIMEOUT = 1.0
RECONNECT_DELAY = 0.5  # seconds between attempts while Redis is away
WATCH_EVERY = 0.25  # seconds between looks for replies that stopped coming


class SwarmStoreUnavailable(Exception):
    """Redis did not answer (no connection, a timeout, an error)."""


@dataclass(frozen=True, slots=True)
class Announced:
    """What one announce did to its shared swarm. ``peers4``/``peers6``: packed addresses (6
    bytes IPv4, BEP 23; 18 bytes IPv6, BEP 7), joined, in reply order; ``ids`` their peer ids
    (20 bytes each, IPv4 peers first) when asked for, else empty."""

    seeders: int
    leechers: int
    completions: int
    counted: bool  # this announce was a completed download
    peers4: bytes
    peers6: bytes
    ids: bytes

    def listed(self) -> list[tuple[bytes, bytes | None]]:
        """(packed address, peer id or None) of each peer, IPv4 first."""
        addrs = [self.peers4[i : i + 6] for i in range(0, len(self.peers4), 6)]
        addrs += [self.peers6[i : i + 18] for i in range(0, len(self.peers6), 18)]
        ids = self.ids
        return [(a, ids[i * 20 : i * 20 + 20] if ids else None) for i, a in enumerate(addrs)]


class RedisSwarms:
    """The swarm store on a Redis server: announce and counts, each one script run."""

    log = Logger()

    def __init__(self, url: str, reactor: Any, on_outage: Callable[[], None] = lambda: None):
        """``on_outage`` runs once per call refused while Redis is away (a metric)."""
        host, port, db = redis_address(url)
        self.url = url
        self.reactor = reactor
        self.on_outage = on_outage
        self._factory = _ProtocolFactory(db, self._connection_failed)
        self._endpoint = HostnameEndpoint(reactor, host, port, timeout=CONNECT_TIMEOUT)
        self.conn: txredisapi.RedisProtocol | None = None  # a usable connection, or None
        self.down = False  # an outage is being reported (one log line each)
        self._started = False
        self._attempt: Deferred[Any] | None = None
        self._next: Any = None  # the delayed call of the next attempt
        # a reply that does not come: script runs sent and answered, and how long the
        # answered count has stood still with runs outstanding (one watchdog, not a timer
        # per call)
        self._sent = self._done = self._done_before = 0
        self._stalled = 0.0
        self._watchdog = LoopingCall(self._watch)
        self._watchdog.clock = reactor

    def start(self) -> None:
        """Connect, and keep reconnecting every RECONNECT_DELAY seconds while Redis is away."""
        if not self._started:
            self._started = True
            self._connect()
            self._watchdog.start(WATCH_EVERY, now=False)

    def stop(self) -> Deferred[Any] | None:
        self._started = False
        if self._watchdog.running:
            self._watchdog.stop()
        if self._next is not None and self._next.active():
            self._next.cancel()
        if self._attempt is not None:
            self._attempt.cancel()
        conn, self.conn = self.conn, None
        if conn is None or conn.transport is None:
            return None
        gone = conn.whenDisconnected()
        conn.transport.loseConnection()
        return gone

    def _connect(self) -> None:
        self._next = None
        if not self._started:
            return
        attempt: Deferred[Any] = self._endpoint.connect(self._factory)
        self._attempt = attempt.addCallback(_usable)
        self._attempt.addCallbacks(self._connected, self._connection_failed)

    def _connected(self, conn: txredisapi.RedisProtocol) -> None:
        self._attempt = None
        self.conn = conn
        self._sent = self._done = self._done_before = 0
        self._stalled = 0.0
        conn.whenDisconnected().addCallback(self._lost)

    def _lost(self, conn: Any) -> None:
        if self.conn is conn:
            self.conn = None
            self._again()

    def _connection_failed(self, failure: Any) -> None:
        self._attempt = None
        if not self.down and self._started and not failure.check(CancelledError):
            self.down = True
            self.log.warn(
                "swarm store {url} unreachable: {e}", url=self.url, e=failure.getErrorMessage()
            )
        self._again()

    def _again(self) -> None:
        if self._started and self._next is None:
            self._next = self.reactor.callLater(RECONNECT_DELAY, self._connect)

    def _watch(self) -> None:
        """Close a connection whose replies stopped coming for REPLY_TIMEOUT seconds (a hung
        Redis, a cut network): its calls fail, and the next attempt starts."""
        if self._done != self._done_before or self._sent == self._done:
            self._done_before = self._done
            self._stalled = 0.0
            return
        self._stalled += WATCH_EVERY
        conn = self.conn
        if self._stalled >= REPLY_TIMEOUT and conn is not None and conn.transport is not None:
            self._stalled = 0.0
            conn.transport.abortConnection()

    @property
    def reachable(self) -> bool:
        """A connection is open (what /health reports)."""
        return self._connection() is not None

    # -- one script run

    def _connection(self) -> Any:
        conn = self.conn
        return conn if conn is not None and conn.connected else None

    def _run(
        self,
        script: str,
        digest: bytes,
        key: bytes,
        args: Sequence[Any],
        then: Callable[[Any], Any],
    ) -> Deferred:
        """Run a script on the swarm ``key``; ``then`` turns the reply into the result."""
        conn = self._connection()
        if conn is None:
            return self._refused(SwarmStoreUnavailable("no connection"))
        try:
            d = conn.execute_command(b"EVALSHA", digest, 1, key, *args)
        except Exception as e:  # the connection closed under us
            return self._refused(e)
        self._sent += 1
        return d.addCallbacks(
            self._answered, self._retry, (then,), None, (conn, script, key, args, then)
        )

    def _retry(self, failure: Any, conn: Any, script: str, key: bytes, args: Any, then: Any) -> Any:
        """NOSCRIPT (a restarted or flushed server): run the script's text, which loads it."""
        self._done += 1
        error = failure.value
        if isinstance(error, txredisapi.ResponseError) and "NOSCRIPT" in str(error):
            try:
                d = conn.execute_command(b"EVAL", script, 1, key, *args)
            except Exception as e:
                return self._refused(e)
            self._sent += 1
            return d.addCallbacks(self._answered, self._failed, (then,))
        return self._refused(error)

    def _answered(self, reply: Any, then: Callable[[Any], Any]) -> Any:
        self._done += 1
        if self.down:
            self.down = False
            self.log.info("swarm store {url} reachable again", url=self.url)
        return then(reply)

    def _failed(self, failure: Any) -> Deferred:
        self._done += 1
        return self._refused(failure.value)

    def _refused(self, error: BaseException) -> Deferred:
        self.on_outage()
        if not self.down and self._started:
            self.down = True  # one line per outage, not one per announce
            self.log.warn(
                "swarm store {url} unreachable: {e}",
                url=self.url,
                e=str(error) or type(error).__name__,
            )
        return fail(SwarmStoreUnavailable(str(error)))

    # -- the store's operations

    def announce(
        self,
        key: bytes,
        other: bool,
        addr: bytes,
        peer_id: bytes,
        seeding: bool,
        event: int,
        numwant: int,
        both_families: bool,
        known_completions: int,
        now: int,
        peer_ttl: int,
        with_ids: bool = False,
    ) -> Deferred[Announced]:
        """Apply one announce to the swarm ``key`` (``other``: in the list of its other hash)
        and pick up to ``numwant`` peers of that list, the announcer's network first.
        ``known_completions``: the completions this process knows of (the registry's count),
        which the shared count never falls below."""
        event = event if event in (EVENT_COMPLETED, EVENT_STOPPED) else 0
        args = _ANNOUNCE_ARGS(
            now, peer_ttl, other, seeding, event, numwant, both_families, with_ids,
            min(known_completions, 0xFFFFFFFF), _luck(32),
        )  # fmt: skip
        return self._run(
            ANNOUNCE, _ANNOUNCE_SHA, swarm_prefix(key), (args, addr, peer_id), _announced
        )

    def counts(self, key: bytes, now: int, peer_ttl: int) -> Deferred[tuple[int, int, int]]:
        """(seeders, leechers, completions) of one swarm, expired peers dropped first."""
        return self._run(
            COUNTS, _COUNTS_SHA, swarm_prefix(key), (_COUNTS_ARGS(now, peer_ttl),), _counted
        )

    def counts_of(
        self, keys: Sequence[bytes], now: int, peer_ttl: int
    ) -> Deferred[list[tuple[int, int, int]]]:
        """Counts of several swarms: one script run each (each swarm is in its own slot of a
        cluster), sent together on the connection."""
        d = gatherResults([self.counts(k, now, peer_ttl) for k in keys], consumeErrors=True)
        return d.addErrback(_first_error)

    def drop(self, key: bytes) -> Deferred[Any]:
        """Delete a whole swarm (its registry entry was taken down)."""
        conn = self._connection()
        if conn is None:
            return fail(SwarmStoreUnavailable("no connection"))
        try:
            return conn.execute_command(b"DEL", *swarm_keys(key))
        except Exception as e:
            return fail(SwarmStoreUnavailable(str(e)))


def _usable(conn: Any) -> Deferred[Any]:
    """Fires once the connection has selected its database. Small writes go out at once:
    with Nagle's algorithm, a script run sent while the last one's reply is unacknowledged
    waits for the peer's delayed ACK (40 ms)."""
    conn.transport.setTcpNoDelay(True)
    ready: Deferred[Any] = conn.whenConnected()
    return ready


class _Protocol(txredisapi.RedisProtocol):
    """txredisapi's protocol with a shorter way to frame a command of bytes and ints (every
    command here is one): the generic one encodes each word and each length in turn."""

    def _build_command(self, *args: Any, **kwargs: Any) -> bytes:
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            if isinstance(arg, bytes):
                word = arg
            elif isinstance(arg, int):
                word = b"%d" % arg
            else:  # what txredisapi sends of its own (SELECT, AUTH)
                word = self._encode_value(arg)
            parts.append(b"$%d\r\n%s\r\n" % (len(word), word))
        return b"".join(parts)


class _ProtocolFactory(Factory):
    """txredisapi's protocol on a connection of our own, reopened by ``RedisSwarms`` (its
    pool would queue announces while Redis is away instead of refusing them)."""

    isLazy = True  # what the protocol asks of its factory when SELECT fails
    noisy = False  # no "Starting factory" line for each attempt while Redis is away

    def __init__(self, db: int, failed: Callable[[Any], None]) -> None:
        self.db = db
        self.failed = failed

    def buildProtocol(self, addr: Any) -> txredisapi.RedisProtocol:
        conn = _Protocol(
            charset=None,
            dbid=self.db or None,
            convertNumbers=False,
        )
        conn.factory = self
        return conn

    def stopTrying(self) -> None:
        """SELECT of the database failed: the connection closes, and is tried again."""

    def connectionError(self, message: str) -> None:
        self.failed(Failure(SwarmStoreUnavailable(message)))


class RedisConnection(Service):
    """Opens the connection when the tracker starts, closes it when it stops."""

    def __init__(self, swarms: RedisSwarms) -> None:
        self.swarms = swarms

    def startService(self) -> None:
        super().startService()
        self.swarms.start()

    def stopService(self) -> Deferred[Any] | None:
        super().stopService()
        return self.swarms.stop()


_ANNOUNCE_SHA = sha1(ANNOUNCE)
_ANNOUNCE_ARGS = ANNOUNCE_ARGS.pack
_COUNTS_ARGS = COUNTS_ARGS.pack
_COUNTS_SHA = sha1(COUNTS)


def _first_error(failure: Any) -> Any:
    """The error of the first of several script runs that failed (gatherResults wraps it)."""
    if failure.check(FirstError):
        return failure.value.subFailure
    return failure


def _counted(reply: list[Any]) -> tuple[int, int, int]:
    return int(reply[0]), int(reply[1]), int(reply[2])


def _announced(reply: list[Any]) -> Announced:
    peers4, peers6 = reply[4], reply[5]
    ids = reply[6] if len(reply) > 6 else b""
    return Announced(
        int(reply[0]), int(reply[1]), int(reply[2]), reply[3] == 1, peers4, peers6, ids
    )
