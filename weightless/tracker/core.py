"""Announce and scrape: the tracker's rules over the catalog and the swarms.

Pure: the time, the client address and the request bytes come in, reply bytes go out. The HTTP
and UDP adapters share this object, so a peer announced over one is seen over the other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from weightless.netaddr import pack_ip
from weightless.tracker.accounting import Accounting, PendingWrites
from weightless.tracker.catalog import Catalog, CatalogEntry
from weightless.tracker.swarm import (
    NEW,
    WAS_LEECHER,
    Nearby,
    PeerGroup,
    Picked,
    Swarm,
    SwarmStore,
)
from weightless.wire import bencode
from weightless.wire.numbers import EVENT_COMPLETED, EVENT_STARTED, EVENT_STOPPED
from weightless.wire.passkey import Passkeys
from weightless.wire.query import QueryError, parse_announce, parse_scrape, wire_hash


class Refused(Exception):
    """An announce or scrape the tracker will not serve; the message goes to the client."""


FULL = "tracker is full"


@dataclass(frozen=True)
class Policy:
    open: bool = False
    max_peers: int = 50
    max_swarms: int = 1_000_000  # in open mode, unregistered swarms held at once
    interval: int = 1800
    min_interval: int = 900
    peer_ttl: int = 3600


class Tracker:
    def __init__(
        self,
        policy: Policy,
        catalog: Catalog,
        swarms: SwarmStore,
        pending: PendingWrites,
        passkeys: Passkeys | None,
        accounting: Accounting | None,
        rand: Callable[[], float],
    ) -> None:
        self.policy = policy
        self.catalog = catalog
        self.swarms = swarms
        self.pending = pending
        self.passkeys = passkeys
        self.accounting = accounting
        self.rand = rand
        # told of every completion of a registered entry counted here (with several workers,
        # the others learn it at once instead of with the next share of counts)
        self.on_completed: Callable[[CatalogEntry], None] | None = None

    # -- rules shared by HTTP and UDP

    def user(self, passkey: bytes | None) -> str | None:
        """Who announces. With passkeys on, a missing or bad passkey is refused."""
        if self.passkeys is None:
            return None
        if not passkey:
            raise Refused("this tracker needs a passkey: announce to /{passkey}/announce")
        user = self.passkeys.user(passkey)
        if user is None:
            raise Refused("invalid passkey")
        return user

    def swarm_of(self, info_hash: bytes) -> tuple[bytes, CatalogEntry | None]:
        """The swarm a 20-byte wire hash announces into, and its registry entry."""
        if info_hash in self.catalog.blocked:
            raise Refused("this torrent is blocked")
        found = self.catalog.by_wire.get(info_hash)
        if found is not None:
            return found
        if not self.policy.open:
            raise Refused("unregistered torrent: this tracker only tracks registered info hashes")
        return info_hash, None

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
    ) -> tuple[int, int, int, list[tuple[PeerGroup | Nearby | Picked, int, int]]]:
        """Apply one announce (HTTP or UDP) to its swarm and choose the peers to send back.
        ``numwant`` None means the default; it is capped by --max-peers and by ``cap`` (what
        fits the reply). Returns seeders, leechers, completions and [(group, count, skip)].

        The peers come from the list of the announced hash only; the counts are the whole
        swarm's (a hybrid's v1 and v2 hashes are one swarm), each peer once. Completions
        count once per peer per download, whichever hash and protocol: a leecher of the swarm
        that announces left=0 (with or without event=completed, in a stopped announce too);
        an event=completed from a peer the swarm does not know (the tracker restarted, the
        client failed over from another tracker, or found its peers through DHT) unless that
        peer's completion was counted already. A peer whose first announce is left=0 without
        the event is a seeder starting up and never counts."""
        key, entry = self.swarm_of(info_hash)
        swarms = self.swarms.swarms
        if (
            entry is None
            and len(swarms) >= self.policy.max_swarms
            and key not in swarms
            and event != EVENT_STOPPED
        ):
            raise Refused(FULL)  # --open is bounded by --max-swarms
        # a hybrid entry's other hash (its v1 hash) has a peer list of its own in the swarm
        other = key is not info_hash and key != info_hash
        if self.accounting is not None and user is not None:
            self.accounting.announce(
                user,
                key,
                addr,
                uploaded,
                downloaded,
                event == EVENT_STARTED,
                event == EVENT_STOPPED,
                now,
            )
        seeding = left == 0
        if event == EVENT_STOPPED:  # gone: no peers for it
            gone, before = self.swarms.remove(key, addr, other, seeding)
            if seeding and before == WAS_LEECHER:  # finished, and says so only now
                self.swarms.count_completion(key, addr, int(now), True)
                self.completed(gone, entry)
            seeders, leechers = gone.counts() if gone is not None else (0, 0)
            return seeders, leechers, self.downloaded(gone, entry), []
        if event == EVENT_COMPLETED and left is None:
            seeding = True  # the event says it has everything
        swarm, _, pos, before = self.swarms.put(key, addr, peer_id, seeding, int(now), other)
        if (
            seeding
            # with or without event=completed: not every client sends it (aria2, rtorrent)
            and (before == WAS_LEECHER or (before == NEW and event == EVENT_COMPLETED))
            and self.swarms.count_completion(key, addr, int(now), before == WAS_LEECHER)
        ):
            self.completed(swarm, entry)
        most = self.policy.max_peers
        wanted = most if numwant is None or numwant > most else numwant
        if cap is not None and wanted > cap:
            wanted = cap
        peers = swarm.other if other else swarm
        assert peers is not None
        plan, _ = peers.pick(len(addr) == 18, seeding, wanted, pos, both_families, addr, self.rand)
        seeders, leechers = swarm.counts()
        return seeders, leechers, self.downloaded(swarm, entry), plan

    def completed(self, swarm: Swarm | None, entry: CatalogEntry | None) -> None:
        """A leecher of the swarm became a seeder: one completed download."""
        if entry is not None:
            entry.completions += 1
            self.pending.complete(entry.info_hash)
            if self.on_completed is not None:
                self.on_completed(entry)
        elif swarm is not None:
            swarm.completions += 1

    @staticmethod
    def downloaded(swarm: Swarm | None, entry: CatalogEntry | None) -> int:
        if entry is not None:
            return entry.completions
        return swarm.completions if swarm is not None else 0

    def scrape_one(self, info_hash: bytes) -> tuple[int, int, int] | None:
        """(seeders, completed, leechers) of a wire hash; None when it is blocked."""
        try:
            key, entry = self.swarm_of(info_hash)
        except Refused:
            if info_hash in self.catalog.blocked:
                return None
            return 0, 0, 0
        swarm = self.swarms.get(key)
        seeders, leechers = swarm.counts() if swarm is not None else (0, 0)
        return seeders, self.downloaded(swarm, entry), leechers

    # -- HTTP (bencoded replies)

    def http_announce(self, query: bytes, passkey: bytes | None, ip: str, now: float) -> bytes:
        try:
            user = self.user(passkey)
            a = parse_announce(query)
            seeders, leechers, downloaded, plan = self.announce(
                a.info_hash,
                pack_ip(ip) + a.port.to_bytes(2, "big"),
                a.peer_id,
                a.left,
                a.uploaded,
                a.downloaded,
                a.event,
                a.numwant,
                user,
                now,
            )
        except (QueryError, Refused) as e:
            return bencode.failure(str(e))
        policy = self.policy
        if not a.compact:
            start = self.rand()
            return bencode.announce_dict_peers(
                policy.interval,
                policy.min_interval,
                seeders,
                leechers,
                downloaded,
                (
                    (peer_ip, port, None if a.no_peer_id else peer_id)
                    for g, count, skip in plan
                    for peer_ip, port, peer_id in g.listed(count, start, skip)
                ),
            )
        peers: list[bytes] = []
        peers6: list[bytes] = []
        for g, count, skip in plan:
            (peers6 if g.width == 18 else peers).append(g.packed(count, self.rand(), skip))
        return bencode.announce(
            policy.interval,
            policy.min_interval,
            seeders,
            leechers,
            downloaded,
            b"".join(peers),
            b"".join(peers6),
        )

    def http_scrape(self, query: bytes, passkey: bytes | None) -> bytes:
        try:
            hashes = self.scrape_request(query, passkey)
        except Refused as e:
            return bencode.failure(str(e))
        return scrape_reply(hashes, [self.scrape_one(wire_hash(h)) for h in hashes])

    def scrape_request(self, query: bytes, passkey: bytes | None) -> list[bytes]:
        """The hashes (as sent) of an HTTP scrape; Refused when it is not served."""
        self.user(passkey)
        try:
            return parse_scrape(query)
        except QueryError as e:
            raise Refused(str(e)) from None

    def route_key(self, info_hash: bytes) -> bytes | None:
        """The swarm a wire hash belongs to, or None when it is not served (the error is
        then produced wherever the request is answered)."""
        if info_hash in self.catalog.blocked:
            return None
        found = self.catalog.by_wire.get(info_hash)
        if found is not None:
            return found[0]
        return info_hash if self.policy.open else None


def scrape_reply(hashes: list[bytes], stats: list[tuple[int, int, int] | None]) -> bytes:
    """The bencoded scrape of ``hashes`` (as requested) with their stats; blocked ones (None)
    are left out."""
    return bencode.scrape(
        (info_hash, *counts) for info_hash, counts in zip(hashes, stats, strict=True) if counts
    )
