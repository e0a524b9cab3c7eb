"""Announce and scrape on swarms shared through Redis: the rules of ``Tracker`` (passkeys,
the catalog, blocked hashes, accounting, completions in the registry) with the swarm state in
`RedisSwarms`, so every reply is a Deferred. The HTTP and UDP adapters call this instead of the
Tracker's own swarm methods when ``--swarm-store`` is a Redis URL.

While Redis is unreachable an announce is refused with ``swarm store unavailable`` and a BEP 31
``retry in`` (minutes), a scrape likewise; the registry is not touched."""

from __future__ import annotations

from collections.abc import Callable
from socket import AF_INET, AF_INET6, inet_ntop

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from weightless.netaddr import pack_ip
from weightless.sharedswarms.redis import Announced, RedisSwarms, SwarmStoreUnavailable
from weightless.tracker.catalog import CatalogEntry
from weightless.tracker.core import Refused, Tracker, scrape_reply
from weightless.wire import bencode, udp
from weightless.wire.numbers import EVENT_COMPLETED, EVENT_STARTED, EVENT_STOPPED
from weightless.wire.query import QueryError, parse_announce, wire_hash
from weightless.wire.route import ANNOUNCE, route
from weightless.wire.udp import MAX_REPLY_PEERS_V4, MAX_REPLY_PEERS_V6, AnnounceRequest

UNAVAILABLE = "swarm store unavailable"
RETRY_IN = 1  # minutes (BEP 31): Redis is usually back well within it
UNAVAILABLE_REPLY = b"d14:failure reason%d:%s8:retry ini%dee" % (
    len(UNAVAILABLE),
    UNAVAILABLE.encode(),
    RETRY_IN,
)

Stats3 = tuple[int, int, int] | None


class SharedTracker:
    """The announce and scrape of a tracker whose swarms are in Redis."""

    def __init__(self, tracker: Tracker, swarms: RedisSwarms, clock: Callable[[], float]) -> None:
        self.tracker = tracker
        self.swarms = swarms
        self.clock = clock

    def announce(
        self,
        info_hash: bytes,
        addr: bytes,
        peer_id: bytes,
        left: int | None,
        uploaded: int,
        downloaded: int,
        event: int,
        numwant: int | None,
        user: str | None,
        now: float,
        both_families: bool = True,
        cap: int | None = None,
        with_ids: bool = False,
    ) -> Deferred[tuple[Announced, int]]:
        """As ``Tracker.announce``: (what Redis answered, completions to report). Raises
        Refused at once for what is refused without asking Redis."""
        tracker = self.tracker
        key, entry = tracker.swarm_of(info_hash)
        other = key != info_hash
        if tracker.accounting is not None and user is not None:
            tracker.accounting.announce(
                user, key, addr, uploaded, downloaded,
                event == EVENT_STARTED, event == EVENT_STOPPED, now,
            )  # fmt: skip
        policy = tracker.policy
        wanted = policy.max_peers if numwant is None or numwant > policy.max_peers else numwant
        if cap is not None and wanted > cap:
            wanted = cap
        # a completed event without ``left`` says it has everything
        seeding = left == 0 or (left is None and event == EVENT_COMPLETED)
        d = self.swarms.announce(
            key, other, addr, peer_id, seeding, event, wanted, both_families,
            entry.completions if entry is not None else 0, int(now), policy.peer_ttl, with_ids,
        )  # fmt: skip
        return d.addCallback(self._applied, entry)

    def _applied(self, done: Announced, entry: CatalogEntry | None) -> tuple[Announced, int]:
        if entry is None:
            return done, done.completions
        if done.counted:  # counted here: the registry's count goes up once, from here
            self.tracker.completed(None, entry)
        if done.completions > entry.completions:  # counted by another tracker
            entry.completions = done.completions
        return done, entry.completions

    # -- HTTP

    def http_announce(
        self, query: bytes, passkey: bytes | None, ip: str, now: float
    ) -> bytes | Deferred[bytes]:
        try:
            user = self.tracker.user(passkey)
            a = parse_announce(query)
            d = self.announce(
                a.info_hash, pack_ip(ip) + a.port.to_bytes(2, "big"), a.peer_id, a.left,
                a.uploaded, a.downloaded, a.event, a.numwant, user, now,
                with_ids=not a.compact and not a.no_peer_id,
            )  # fmt: skip
        except (QueryError, Refused) as e:
            return bencode.failure(str(e))
        return d.addCallbacks(self._http_reply, _unavailable, callbackArgs=(a.compact,))

    def _http_reply(self, result: tuple[Announced, int], compact: bool) -> bytes:
        done, completions = result
        policy = self.tracker.policy
        if not compact:
            return bencode.announce_dict_peers(
                policy.interval,
                policy.min_interval,
                done.seeders,
                done.leechers,
                completions,
                ((*_unpack(p), i) for p, i in done.listed()),
            )
        return bencode.announce(
            policy.interval,
            policy.min_interval,
            done.seeders,
            done.leechers,
            completions,
            done.peers4,
            done.peers6,
        )

    def http_scrape(self, query: bytes, passkey: bytes | None) -> bytes | Deferred[bytes]:
        try:
            hashes = self.tracker.scrape_request(query, passkey)
        except Refused as e:
            return bencode.failure(str(e))
        return self.scrape([wire_hash(h) for h in hashes]).addCallbacks(
            lambda stats: scrape_reply(hashes, stats), _unavailable
        )

    def scrape(self, hashes: list[bytes]) -> Deferred[list[Stats3]]:
        """(seeders, completed, leechers) of each 20-byte hash (None: blocked), as
        ``Tracker.scrape_one`` answers them, from the shared swarms."""
        tracker = self.tracker
        found: list[tuple[bytes, CatalogEntry | None] | None] = []
        for h in hashes:
            try:
                found.append(tracker.swarm_of(h))
            except Refused:
                found.append(None)
        keys = [f[0] for f in found if f is not None]
        if not keys:
            return succeed([None if h in tracker.catalog.blocked else (0, 0, 0) for h in hashes])
        d = self.swarms.counts_of(keys, int(self.clock()), tracker.policy.peer_ttl)

        def answer(counts: list[tuple[int, int, int]]) -> list[Stats3]:
            it = iter(counts)
            out: list[Stats3] = []
            for h, f in zip(hashes, found, strict=True):
                if f is None:
                    out.append(None if h in tracker.catalog.blocked else (0, 0, 0))
                    continue
                seeders, leechers, done = next(it)
                entry = f[1]
                if entry is not None:
                    done = entry.completions = max(entry.completions, done)
                out.append((seeders, done, leechers))
            return out

        return d.addCallback(answer)

    # -- UDP (BEP 15)

    def udp_announce(self, r: AnnounceRequest, source: bytes, now: float) -> Deferred[bytes]:
        """The reply datagram to an announce; Refused at once for a refusal. While Redis is
        away the reply is a BEP 15 error with the same reason as over HTTP."""
        _, tid, info_hash, peer_id, downloaded, left, uploaded, event, _, _, num_want, port, url = r
        passkey = None
        if url:
            routed = route(url)
            if routed is None or routed[0] != ANNOUNCE:
                raise Refused("URL data must be /announce, /announce/{key} or /{key}/announce")
            passkey = routed[1]
        user = self.tracker.user(passkey)
        if port == 0:
            raise Refused("invalid port: expected 1-65535")
        v6 = len(source) == 16
        d = self.announce(
            info_hash, source + port.to_bytes(2, "big"), peer_id, left, uploaded, downloaded,
            event, None if num_want < 0 else num_want, user, now, False,
            MAX_REPLY_PEERS_V6 if v6 else MAX_REPLY_PEERS_V4,
        )  # fmt: skip
        interval = self.tracker.policy.interval

        def reply(result: tuple[Announced, int]) -> bytes:
            done = result[0]
            peers = done.peers6 if v6 else done.peers4  # one family: the request's
            return udp.encode_announce_response(tid, interval, done.leechers, done.seeders, peers)

        return d.addCallbacks(reply, udp_unavailable, errbackArgs=(tid,))


def _unpack(packed: bytes) -> tuple[str, int]:
    family = AF_INET if len(packed) == 6 else AF_INET6
    return inet_ntop(family, packed[:-2]), int.from_bytes(packed[-2:], "big")


def _unavailable(failure: Failure) -> bytes:
    failure.trap(SwarmStoreUnavailable)
    return UNAVAILABLE_REPLY


def udp_unavailable(failure: Failure, tid: int) -> bytes:
    """The BEP 15 error for a request Redis could not answer (other failures pass on)."""
    failure.trap(SwarmStoreUnavailable)
    return udp.encode_error(tid, UNAVAILABLE)
