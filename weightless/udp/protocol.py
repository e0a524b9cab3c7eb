"""The BEP 15 UDP tracker: a thin adapter from datagrams to the shared Tracker.

Replies never exceed the request unless the sender proved its address with a valid connection
id, so a spoofed source cannot use the tracker as an amplifier."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from weightless.metrics import Stats
from weightless.netaddr import normalize_ip, pack_ip
from weightless.sharedswarms.tracker import udp_unavailable
from weightless.tracker.core import Refused, Tracker
from weightless.tracker.ratelimit import Limiter
from weightless.wire import udp
from weightless.wire.bencode import RATE_LIMITED
from weightless.wire.connid import ConnectionIdValidator
from weightless.wire.route import ANNOUNCE, route
from weightless.wire.udp import MAX_REPLY_PEERS_V4, MAX_REPLY_PEERS_V6, AnnounceRequest

if TYPE_CHECKING:
    from weightless.cluster.router import Router
    from weightless.sharedswarms.tracker import SharedTracker

BAD_CONNECTION = "expired connection id"  # short: its reply must not outgrow a scrape request

Address = tuple[str, int]
_SOURCES_MAX = 1 << 16


class UDPTracker(DatagramProtocol):
    log = Logger()

    def __init__(
        self,
        tracker: Tracker,
        limiter: Limiter,
        stats: Stats,
        connection_ids: ConnectionIdValidator,
        clock: Callable[[], float],
        router: Router | None = None,
        shared: SharedTracker | None = None,
    ) -> None:
        """``shared``: swarms in Redis, announces and scrapes answered through it (a Deferred
        each); ``router``: several workers of a memory store, work sent to the owner."""
        self.tracker = tracker
        self.shared = shared
        self.limiter = limiter
        self.stats = stats
        self.connection_ids = connection_ids
        self.clock = clock
        self.router = router
        self._sources: dict[str, tuple[str, bytes]] = {}  # host -> normalized IP, packed

    def datagramReceived(self, data: bytes, addr: Address) -> None:
        reply = self.reply(data, addr[0], addr[1], self.clock())
        if reply is not None:
            self._send(reply, addr)

    def reply(self, data: bytes, host: str, port: int, now: float) -> bytes | None:
        """The datagram to send back to ``host``:``port`` at once, or None (nothing, or a
        scrape answered through other workers, sent when it is ready). Never raises: the
        socket loop of weightless/udp/port.py calls this for every datagram."""
        try:
            reply = self.answer(data, host, port, now, True)
        except Exception:
            self.log.failure("unexpected error answering a UDP request from {host}", host=host)
            return None
        if reply is None or isinstance(reply, bytes):
            return reply
        self._later(reply, (host, port))
        return None

    def answer_forwarded(self, data: bytes, host: str, port: int, now: float) -> None:
        """A datagram another worker received for a swarm this one owns: answer it from here
        (the sockets share the port, so the client sees the address it sent to)."""
        self._reply(data, host, port, now, forward=False)

    def _reply(self, data: bytes, host: str, port: int, now: float, forward: bool) -> None:
        try:
            reply = self.answer(data, host, port, now, forward)
        except Exception:
            self.log.failure("unexpected error answering a UDP request from {host}", host=host)
            return
        if isinstance(reply, Deferred):
            self._later(reply, (host, port))
        elif reply is not None:
            self._send(reply, (host, port))

    def _later(self, reply: Deferred[bytes], addr: Address) -> None:
        reply.addCallback(self._send, addr)
        reply.addErrback(lambda f: self.log.failure("a UDP request failed", f))

    def _send(self, reply: bytes, addr: Address) -> None:
        # straight to the socket: the port's write() re-validates the address we just got
        # from it, which costs more than the send itself
        sock = getattr(self.transport, "socket", None)
        if sock is None:
            if self.transport is not None:
                self.transport.write(reply, addr)
            return
        try:  # noqa: SIM105 (contextlib.suppress costs more than the send on this path)
            sock.sendto(reply, addr)
        except OSError:
            pass  # a full send buffer drops the reply, as the network might

    def answer(
        self, data: bytes, host: str, port: int, now: float, forward: bool = False
    ) -> bytes | Deferred[bytes] | None:
        """The reply datagram to ``data`` from ``host``:``port``, or None to stay silent.
        With ``forward``, an announce for another worker's swarm goes there (None here)."""
        known = self._sources.get(host)
        if known is None:
            if len(self._sources) >= _SOURCES_MAX:
                self._sources.clear()
            ip = normalize_ip(host)
            known = self._sources[host] = (ip, pack_ip(ip))
        ip, source = known
        # A connection id proves the IP address, not the port (as BEP 15, aquatic and opentracker
        # have it): libtorrent keeps one connection id per tracker IP for the whole process, so
        # its sessions announce from their own ports with an id another session obtained.
        try:
            request = udp.parse_request(data)
        except udp.UdpParseError as e:
            self.stats.count("udp", "unknown", "malformed")
            return udp.error_reply(e, lambda cid: self.connection_ids.valid(cid, source, now))
        if forward and self.router and self.router.udp_forward(request, data, host, port, now):
            return None
        if isinstance(request, AnnounceRequest):  # nine datagrams in ten: checked first
            if not self.connection_ids.valid(request[0], source, now):
                self.stats.count("udp", "announce", "bad_connection_id")
                return udp.encode_error(request[1], BAD_CONNECTION)
            if not self.limiter.allow(ip, now):
                self.stats.count("udp", "announce", "rate_limited")
                return udp.encode_error(request[1], RATE_LIMITED)
            try:
                if self.shared is None:
                    reply: bytes | Deferred[bytes] = self._announce(request, source, now)
                else:
                    reply = self.shared.udp_announce(request, source, now)
            except Refused as e:
                self.stats.count("udp", "announce", "failure")
                return udp.encode_error(request[1], str(e))
            self.stats.count("udp", "announce", "ok")
            return reply
        if isinstance(request, udp.ConnectRequest):
            self.stats.count("udp", "connect", "ok")
            return udp.encode_connect_response(
                request.transaction_id, self.connection_ids.make(source, now)
            )
        tid = request.transaction_id
        if not self.connection_ids.valid(request.connection_id, source, now):
            self.stats.count("udp", "scrape", "bad_connection_id")
            return udp.encode_error(tid, BAD_CONNECTION)
        if not self.limiter.allow(ip, now):
            self.stats.count("udp", "scrape", "rate_limited")
            return udp.encode_error(tid, RATE_LIMITED)
        self.stats.count("udp", "scrape", "ok")
        if self.shared is not None:
            d = self.shared.scrape(request.info_hashes)
            return d.addCallbacks(
                self._scrape_reply, udp_unavailable, callbackArgs=(tid,), errbackArgs=(tid,)
            )
        if self.router is not None:
            return self.router.scrape(request.info_hashes).addCallback(self._scrape_reply, tid)
        return self._scrape_reply([self.tracker.scrape_one(h) for h in request.info_hashes], tid)

    def _announce(self, r: AnnounceRequest, source: bytes, now: float) -> bytes:
        """The peer is the source IP with the port the client announces (BEP 15)."""
        # one unpacking instead of a dozen attribute reads: this runs for every announce
        _, tid, info_hash, peer_id, downloaded, left, uploaded, event, _, _, num_want, port, url = r
        tracker = self.tracker
        passkey = None
        if url:
            routed = route(url)
            if routed is None or routed[0] != ANNOUNCE:
                raise Refused("URL data must be /announce, /announce/{key} or /{key}/announce")
            passkey = routed[1]
        user = tracker.user(passkey)
        if port == 0:
            raise Refused("invalid port: expected 1-65535")
        v6 = len(source) == 16
        seeders, leechers, _, plan = tracker.announce(
            info_hash,
            source + port.to_bytes(2, "big"),
            peer_id,
            left,  # the codec refused negative counters
            uploaded,
            downloaded,
            event,
            None if num_want < 0 else num_want,  # -1: the default (BEP 15)
            user,
            now,
            False,  # both families: no, a reply holds the family of the request only
            MAX_REPLY_PEERS_V6 if v6 else MAX_REPLY_PEERS_V4,  # what fits in it
        )
        # one group, or seeders then leechers for a leecher: no comprehension (a call in 3.11)
        count = len(plan)
        if count == 1:
            g, n, skip = plan[0]
            peers = g.packed(n, tracker.rand(), skip)
        elif count == 2:
            (g, n, skip), (g2, n2, skip2) = plan
            peers = g.packed(n, tracker.rand(), skip) + g2.packed(n2, tracker.rand(), skip2)
        else:
            peers = b"".join([g.packed(n, tracker.rand(), skip) for g, n, skip in plan])
        return udp.encode_announce_response(tid, tracker.policy.interval, leechers, seeders, peers)

    @staticmethod
    def _scrape_reply(stats: list[tuple[int, int, int] | None], tid: int) -> bytes:
        """Per hash, in request order (a blocked one reads as empty: the reply is positional)."""
        return udp.encode_scrape_response(tid, [s or (0, 0, 0) for s in stats])
