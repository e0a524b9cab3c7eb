"""Work for a swarm goes to the worker that owns it.

A worker answers what it owns itself and forwards the rest to the owner over the mesh; the
owner answers as if the request had arrived there. Multi-hash scrapes fan out and gather."""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, gatherResults
from twisted.logger import Logger

from weightless.cluster.ipc import Mesh
from weightless.cluster.owner import owner_of
from weightless.tracker.core import Refused, Tracker, scrape_reply
from weightless.wire import bencode, udp
from weightless.wire.query import announce_hash, wire_hash

HTTP_ANNOUNCE, SCRAPE, UDP_DATAGRAM, STATS, CATALOG, LIVE = 1, 2, 3, 5, 6, 7

_ANNOUNCE_HEAD = struct.Struct(">dBh")  # now, ip length, passkey length (-1: none)
_UDP_HEAD = struct.Struct(">dHB")  # now, port, host length
_STATS3 = struct.Struct(">iii")
BUSY = bencode.failure("tracker busy (a worker is restarting): try again shortly")

Stats3 = tuple[int, int, int] | None


class Router:
    log = Logger()

    def __init__(self, mesh: Mesh, tracker: Tracker) -> None:
        self.mesh = mesh
        self.tracker = tracker
        self.index = mesh.index
        self.workers = mesh.workers
        # what the other workers' messages reach here; weightless/tap.py connects them
        self.udp_answer: Callable[[bytes, str, int, float], None] | None = None
        self.stats_of: Callable[[], dict[str, Any]] | None = None
        self.on_catalog: Callable[[dict[str, Any]], None] | None = None
        self.live_of: Callable[[list[str]], dict[str, Any]] | None = None
        mesh.handlers.update(
            {
                HTTP_ANNOUNCE: self._serve_http_announce,
                SCRAPE: self._serve_scrape,
                UDP_DATAGRAM: self._serve_udp,
                STATS: self._serve_stats,
                CATALOG: self._serve_catalog,
                LIVE: self._serve_live,
            }
        )

    def owner(self, key: bytes | None) -> int:
        return self.index if key is None else owner_of(key, self.workers)

    # -- the receiving side

    def http_announce(
        self, query: bytes, passkey: bytes | None, ip: str, now: float
    ) -> bytes | Deferred[bytes]:
        info_hash = announce_hash(query)
        owner = self.owner(None if info_hash is None else self.tracker.route_key(info_hash))
        if owner == self.index:
            return self.tracker.http_announce(query, passkey, ip, now)
        ip_bytes = ip.encode()
        head = _ANNOUNCE_HEAD.pack(now, len(ip_bytes), -1 if passkey is None else len(passkey))
        payload = b"".join((head, ip_bytes, passkey or b"", query))
        return self.mesh.request(owner, HTTP_ANNOUNCE, payload).addErrback(self._busy)

    def _busy(self, failure: Any) -> bytes:
        self.log.warn("forwarding failed: {e}", e=failure.getErrorMessage())
        return BUSY

    def http_scrape(self, query: bytes, passkey: bytes | None) -> bytes | Deferred[bytes]:
        try:
            hashes = self.tracker.scrape_request(query, passkey)
        except Refused as e:
            return bencode.failure(str(e))
        return self.scrape([wire_hash(h) for h in hashes]).addCallbacks(
            lambda stats: scrape_reply(hashes, stats), self._busy
        )

    def scrape(self, hashes: list[bytes]) -> Deferred[list[Stats3]]:
        """(seeders, completed, leechers) of each 20-byte hash from its owner (None: blocked)."""
        by_owner: dict[int, list[int]] = defaultdict(list)
        for i, h in enumerate(hashes):
            by_owner[self.owner(self.tracker.route_key(h))].append(i)
        results: list[Stats3] = [None] * len(hashes)
        asks = []
        for owner, positions in by_owner.items():
            wanted = [hashes[i] for i in positions]
            if owner == self.index:
                for i, stats in zip(positions, self._scrape_local(wanted), strict=True):
                    results[i] = stats
                continue

            def fill(answer: bytes, positions: list[int] = positions) -> None:
                for n, i in enumerate(positions):
                    stats = _STATS3.unpack_from(answer, n * _STATS3.size)
                    results[i] = None if stats[0] < 0 else stats

            asks.append(self.mesh.request(owner, SCRAPE, b"".join(wanted)).addCallback(fill))
        return gatherResults(asks, consumeErrors=True).addCallback(lambda _: results)

    def _scrape_local(self, hashes: list[bytes]) -> list[Stats3]:
        return [self.tracker.scrape_one(h) for h in hashes]

    def udp_forward(
        self, request: udp.Request, data: bytes, host: str, port: int, now: float
    ) -> bool:
        """Send a UDP announce to its owner, which replies to the client itself. False when
        this worker should answer it."""
        if not isinstance(request, udp.AnnounceRequest):
            return False
        owner = self.owner(self.tracker.route_key(request.info_hash))
        if owner == self.index:
            return False
        host_bytes = host.encode()
        payload = _UDP_HEAD.pack(now, port, len(host_bytes)) + host_bytes + data
        self.mesh.note(owner, UDP_DATAGRAM, payload)
        return True

    def all_stats(self) -> Deferred[list[dict[str, Any]]]:
        """Every worker's counters (this one's included); a worker that does not answer (it
        is restarting) is left out rather than failing the page."""
        assert self.stats_of is not None
        mine = self.stats_of()
        asks = [
            self.mesh.request(i, STATS, b"").addCallback(json.loads)
            for i in range(self.workers)
            if i != self.index
        ]

        def answered(results: list[tuple[bool, Any]]) -> list[dict[str, Any]]:
            return [mine, *(found for ok, found in results if ok)]

        return DeferredList(asks, consumeErrors=True).addCallback(answered)

    def live_counts(self, owner: int, info_hashes: list[str]) -> Deferred[dict[str, Any]]:
        """What worker ``owner`` counts now for these registry entries, whose swarms it owns
        (``live_of`` there); fails with PeerGone when it cannot answer in time."""
        asked = self.mesh.request(owner, LIVE, json.dumps(info_hashes).encode())
        return asked.addCallback(json.loads)

    def catalog_changed(self, change: dict[str, Any]) -> None:
        """Tell the other workers about a registry write made here."""
        self.mesh.broadcast(CATALOG, json.dumps(change).encode())

    # -- the owning side

    def _serve_http_announce(self, payload: bytes) -> bytes:
        now, ip_len, key_len = _ANNOUNCE_HEAD.unpack_from(payload)
        pos = _ANNOUNCE_HEAD.size
        ip = payload[pos : pos + ip_len].decode()
        pos += ip_len
        passkey = None
        if key_len >= 0:
            passkey = payload[pos : pos + key_len]
            pos += key_len
        return self.tracker.http_announce(payload[pos:], passkey, ip, now)

    def _serve_scrape(self, payload: bytes) -> bytes:
        hashes = [payload[i : i + 20] for i in range(0, len(payload), 20)]
        return b"".join(
            _STATS3.pack(*(stats or (-1, -1, -1))) for stats in self._scrape_local(hashes)
        )

    def _serve_udp(self, payload: bytes) -> None:
        now, port, host_len = _UDP_HEAD.unpack_from(payload)
        pos = _UDP_HEAD.size
        host = payload[pos : pos + host_len].decode()
        if self.udp_answer is not None:
            self.udp_answer(payload[pos + host_len :], host, port, now)

    def _serve_stats(self, payload: bytes) -> bytes:
        assert self.stats_of is not None
        return json.dumps(self.stats_of()).encode()

    def _serve_live(self, payload: bytes) -> bytes:
        assert self.live_of is not None
        return json.dumps(self.live_of(json.loads(payload))).encode()

    def _serve_catalog(self, payload: bytes) -> None:
        if self.on_catalog is not None:
            self.on_catalog(json.loads(payload))
