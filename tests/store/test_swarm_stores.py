"""The swarm stores behave the same: every test here runs on the memory store and on a real
Redis (redis-server on a free port), through the HTTP and UDP announce and scrape a client
sees."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote_from_bytes

import bencodepy
import pytest
import pytest_twisted
import udp_client
from twisted.internet import reactor
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import deferLater

from weightless.metrics import Stats
from weightless.sharedswarms.redis import RedisSwarms
from weightless.sharedswarms.tracker import SharedTracker
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.catalog import Catalog, CatalogEntry
from weightless.tracker.core import Policy, Tracker
from weightless.tracker.ratelimit import RateLimiter
from weightless.tracker.swarm import SwarmStore
from weightless.udp.protocol import UDPTracker
from weightless.wire.connid import ConnectionIdValidator

V2 = hashlib.sha256(b"hybrid").hexdigest()
V1 = hashlib.sha1(b"hybrid").hexdigest()
H = b"\xee" * 20


class Store:
    """A tracker on one swarm store; ``announce`` and ``scrape`` answer as a client sees it."""

    def __init__(self, swarms: RedisSwarms | None) -> None:
        self.swarms = swarms
        self.now = 1000.0

    def make(self, open_: bool = True, **policy: Any) -> Store:
        rng = random.Random(1)
        self.tracker = Tracker(
            Policy(open=open_, **policy),
            Catalog(),
            SwarmStore(rng.random),
            PendingWrites(),
            None,
            None,
            rng.random,
        )
        self.front: Tracker | SharedTracker = self.tracker
        if self.swarms is not None:
            self.front = SharedTracker(self.tracker, self.swarms, lambda: self.now)
        return self

    def register(self, completions: int = 0) -> CatalogEntry:
        entry = CatalogEntry(V2, V1, completions)
        self.tracker.catalog.add(entry)
        return entry

    async def announce(
        self, hash_: bytes, peer: int, ip: str = "", now: float = 1000.0, **fields: Any
    ) -> dict[bytes, Any]:
        """Peer ``peer`` announces from port 6000 + peer and (unless told) 10.0.peer.1: a
        network of its own, so that no peer comes first for being a neighbour."""
        ip = ip or f"10.0.{peer}.1"
        self.now = now
        query = q(hash_, peer, **fields)
        body = await maybeDeferred(self.front.http_announce, query, None, ip, now)
        reply: dict[bytes, Any] = bencodepy.decode(body)
        return reply

    async def scrape(self, *hashes: bytes) -> dict[bytes, Any]:
        query = b"&".join(b"info_hash=" + quote_from_bytes(h).encode() for h in hashes)
        body = await maybeDeferred(self.front.http_scrape, query, None)
        files: dict[bytes, Any] = bencodepy.decode(body)[b"files"]
        return files

    async def udp(self, data: bytes, host: str) -> udp_client.Response:
        """One datagram through the BEP 15 adapter; the parsed reply."""
        proto = UDPTracker(
            self.tracker,
            RateLimiter(0, 0),
            Stats(),
            ConnectionIdValidator(b"k" * 32),
            lambda: self.now,
            None,
            self.front if isinstance(self.front, SharedTracker) else None,
        )
        reply = await maybeDeferred(proto.answer, data, host, 1, self.now)
        return udp_client.parse_response(reply)

    async def udp_announce(
        self, hash_: bytes, peer: int, host: str, left: int = 100
    ) -> udp_client.Response:
        connected = await self.udp(udp_client.encode_connect_request(5), host)
        assert isinstance(connected, udp_client.ConnectResponse)
        request = udp_client.encode_announce_request(
            connected.connection_id, 6, hash_, b"-UD0001-%012d" % peer, 0, left, 0, 0,
            port=6000 + peer,
        )  # fmt: skip
        return await self.udp(request, host)


def q(hash_: bytes, peer: int, **fields: Any) -> bytes:
    base: dict[str, Any] = {
        "info_hash": hash_,
        "peer_id": b"-XX0001-%012d" % peer,
        "port": 6000 + peer,
        "left": 100,
    }
    base.update(fields)
    return "&".join(
        f"{k}={quote_from_bytes(v if isinstance(v, bytes) else str(v).encode())}"
        for k, v in base.items()
    ).encode()


def ports(reply: dict[bytes, Any]) -> list[int]:
    peers = reply[b"peers"]
    return [int.from_bytes(peers[i + 4 : i + 6], "big") for i in range(0, len(peers), 6)]


@pytest.fixture(params=["memory", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
    return "memory"


@pytest_twisted.async_yield_fixture
async def store(store_kind: str) -> AsyncIterator[Store]:
    if store_kind == "memory":
        yield Store(None)
        return
    swarms = RedisSwarms(store_kind, reactor)
    swarms.start()
    for _ in range(100):
        if swarms.reachable:
            break
        await deferLater(reactor, 0.02, lambda: None)
    yield Store(swarms)
    await swarms.stop()


@pytest_twisted.ensureDeferred
async def test_peers_see_each_other_never_themselves(store: Store) -> None:
    s = store.make()
    first = await s.announce(H, 1)
    assert first[b"peers"] == b"" and first[b"incomplete"] == 1
    second = await s.announce(H, 2)
    assert ports(second) == [6001]
    assert (second[b"complete"], second[b"incomplete"]) == (0, 2)
    assert ports(await s.announce(H, 1)) == [6002]
    restarted = await s.announce(H, 1, peer_id=b"-XX0002-restarted000")
    assert restarted[b"incomplete"] == 2


@pytest_twisted.ensureDeferred
async def test_seeder_gets_leechers_first_then_seeders_to_fill_the_reply(store: Store) -> None:
    s = store.make()
    for peer in range(1, 6):
        await s.announce(H, peer, left=0)
    for peer in range(6, 9):
        await s.announce(H, peer)
    for _ in range(10):
        got = ports(await s.announce(H, 1, left=0, numwant=5))
        assert len(got) == 5 and {6006, 6007, 6008} < set(got) and 6001 not in got
    reply = await s.announce(H, 1, left=0)
    assert set(ports(reply)) == {6002, 6003, 6004, 6005, 6006, 6007, 6008}
    assert (reply[b"complete"], reply[b"incomplete"]) == (5, 3)
    for _ in range(10):
        assert set(ports(await s.announce(H, 1, left=0, numwant=2))) < {6006, 6007, 6008}
    # a leecher gets seeders first
    for _ in range(10):
        got = ports(await s.announce(H, 6, numwant=3))
        assert set(got) < {6001, 6002, 6003, 6004, 6005}


@pytest_twisted.ensureDeferred
async def test_stopped_removes_the_peer_and_numwant_is_capped(store: Store) -> None:
    s = store.make(max_peers=5)
    await s.announce(H, 1)
    reply = await s.announce(H, 2, event="stopped")
    assert reply[b"peers"] == b"" and reply[b"incomplete"] == 1
    assert ports(await s.announce(H, 3)) == [6001]
    for i in range(10, 30):
        await s.announce(H, i)
    assert len(ports(await s.announce(H, 99))) == 5
    assert len(ports(await s.announce(H, 99, numwant=3))) == 3
    assert len(ports(await s.announce(H, 99, numwant=0))) == 0


@pytest_twisted.ensureDeferred
async def test_non_compact_ipv6_and_mapped_addresses(store: Store) -> None:
    s = store.make()
    await s.announce(H, 1, ip="10.0.0.7")
    peers = (await s.announce(H, 2, compact=0))[b"peers"]
    assert peers == [{b"ip": b"10.0.0.7", b"port": 6001, b"peer id": b"-XX0001-000000000001"}]
    peers = (await s.announce(H, 2, compact=0, no_peer_id=1))[b"peers"]
    assert peers == [{b"ip": b"10.0.0.7", b"port": 6001}]
    await s.announce(H, 3, ip="2001:db8::3")
    reply = await s.announce(H, 4, ip="2001:db8::4")
    assert reply[b"peers6"] == bytes.fromhex("20010db8000000000000000000000003") + bytes([23, 115])
    assert set(ports(reply)) == {6001, 6002}


@pytest_twisted.ensureDeferred
async def test_hybrid_peer_lists_follow_the_announced_hash_counts_are_merged(
    store: Store,
) -> None:
    s = store.make(open_=False)
    s.register()
    v1, v2 = bytes.fromhex(V1), bytes.fromhex(V2)
    await s.announce(v1, 1)  # a v1-only client (rtorrent, Transmission)
    reply = await s.announce(v2[:20], 2)  # libtorrent: both hashes
    assert ports(reply) == [] and reply[b"incomplete"] == 2
    reply = await s.announce(v1, 2)
    assert ports(reply) == [6001] and reply[b"incomplete"] == 2  # peer 2 is counted once
    reply = await s.announce(v2, 3)  # the full 32-byte hash is the truncated one's list
    assert ports(reply) == [6002] and reply[b"incomplete"] == 3
    reply = await s.announce(v1, 4, left=0)
    assert set(ports(reply)) == {6001, 6002}
    assert (reply[b"complete"], reply[b"incomplete"]) == (1, 3)
    reply = await s.announce(v2[:20], 5, left=0)
    assert set(ports(reply)) == {6002, 6003}
    assert (reply[b"complete"], reply[b"incomplete"]) == (2, 3)
    listed = (await s.announce(v1, 6, compact=0))[b"peers"]
    assert {p[b"port"] for p in listed} == {6001, 6002, 6004}
    expected = {b"complete": 2, b"downloaded": 0, b"incomplete": 4}
    assert await s.scrape(v1, v2[:20]) == {v1: expected, v2[:20]: expected}


@pytest_twisted.ensureDeferred
async def test_hybrid_peer_on_both_hashes_counted_once_as_it_changes_and_leaves(
    store: Store,
) -> None:
    s = store.make(open_=False)
    entry = s.register()
    v1, v2 = bytes.fromhex(V1), bytes.fromhex(V2)[:20]
    await s.announce(v1, 1)
    await s.announce(v2, 1)
    await s.announce(v2, 2)
    scrape = await s.scrape(v1, v2)
    assert scrape[v1] == scrape[v2] == {b"complete": 0, b"downloaded": 0, b"incomplete": 2}
    await s.announce(v1, 1, left=0)  # finished (announced under v1 first): a seeder under both
    reply = await s.announce(v2, 2)
    assert (reply[b"complete"], reply[b"incomplete"]) == (1, 1) and ports(reply) == [6001]
    await s.announce(v1, 1, event="stopped", left=0)  # gone from the v1 list only
    reply = await s.announce(v2, 2)
    assert (reply[b"complete"], reply[b"incomplete"]) == (1, 1) and ports(reply) == [6001]
    await s.announce(v2, 1, event="stopped", left=0)
    reply = await s.announce(v2, 2)
    assert (reply[b"complete"], reply[b"incomplete"]) == (0, 1) and ports(reply) == []
    assert entry.completions == 1


LEECHING = {"left": 100}


@pytest.mark.parametrize(
    ("steps", "counted"),
    [
        # a known leecher reaches left=0: with the event, without it, in a stopped announce
        ([LEECHING, {"left": 0, "event": "completed"}], 1),
        ([LEECHING, {"left": 0}], 1),
        ([LEECHING, {"left": 0, "event": "stopped"}], 1),
        ([{"left": 100, "event": "started"}, LEECHING, {"left": 0, "event": "stopped"}], 1),
        # event=completed from a peer not seen before (a restart, a failover, DHT peers)
        ([{"left": 0, "event": "completed"}], 1),
        ([{"left": 0, "event": "completed"}, {"left": 0, "event": "completed"}], 1),
        # once per peer per download: a late or repeated completed does not count again
        ([LEECHING, {"left": 0}, {"left": 0, "event": "completed"}], 1),
        ([LEECHING, {"left": 0}, {"left": 0}, {"left": 0, "event": "stopped"}], 1),
        ([LEECHING, {"left": 0, "event": "completed"}, {"left": 0, "event": "completed"}], 1),
        # a seeder from its first announce (no event) never counts
        ([{"left": 0, "event": "started"}, {"left": 0, "event": "completed"}], 0),
        ([{"left": 0}, {"left": 0, "event": "stopped"}], 0),
        ([{"left": 0, "event": "stopped"}], 0),
        # not finished: a stop, or a completed event with bytes left
        ([LEECHING, {"left": 100, "event": "stopped"}], 0),
        ([LEECHING, {"left": 5, "event": "completed"}], 0),
        ([LEECHING, {"left": 100, "event": "stopped"}, {"left": 0}], 0),
        # a seeder that lost its data and downloads again: a second download
        ([{"left": 0}, LEECHING, {"left": 0}], 1),
        # a completed event, a stop, and the same event again (a retry): one download
        (
            [
                {"left": 0, "event": "completed"},
                {"left": 0, "event": "stopped"},
                {"left": 0, "event": "completed"},
            ],
            1,
        ),
    ],
)
@pytest.mark.parametrize("registry", [True, False], ids=["registered", "open"])
@pytest_twisted.ensureDeferred
async def test_completions_once_per_peer_per_download(
    store: Store, steps: list[dict[str, Any]], counted: int, registry: bool
) -> None:
    s = store.make(open_=not registry)
    h = bytes.fromhex(V1)
    entry = s.register(completions=3) if registry else None
    await s.announce(h, 9)  # another leecher keeps an open swarm alive
    reply: dict[bytes, Any] = {}
    for n, fields in enumerate(steps):
        reply = await s.announce(h, 1, now=1000.0 + n, **fields)
    base = 3 if registry else 0
    assert reply[b"downloaded"] == counted + base
    assert (await s.scrape(h))[h][b"downloaded"] == counted + base
    if entry is not None:
        assert entry.completions == 3 + counted
        assert s.tracker.pending.completions == ({V2: counted} if counted else {})


@pytest.mark.parametrize(
    "finish",
    [
        [("v1", {"left": 0}), ("v2", {"left": 0, "event": "completed"})],
        [("v2", {"left": 0, "event": "completed"}), ("v1", {"left": 0, "event": "completed"})],
        [("v1", {"left": 0, "event": "stopped"}), ("v2", {"left": 0, "event": "stopped"})],
        [("v2", {"left": 0}), ("v1", {"left": 0, "event": "stopped"}), ("v2", {"left": 0})],
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_hybrid_download_counts_once_whichever_hash_reports_it(
    store: Store, finish: list[tuple[str, dict[str, Any]]]
) -> None:
    s = store.make(open_=False)
    entry = s.register()
    hashes = {"v1": bytes.fromhex(V1), "v2": bytes.fromhex(V2)}
    await s.announce(hashes["v1"], 1)
    await s.announce(hashes["v2"], 1)
    for name, fields in finish:
        await s.announce(hashes[name], 1, **fields)
    assert entry.completions == 1
    assert s.tracker.pending.completions == {V2: 1}


@pytest_twisted.ensureDeferred
async def test_peers_not_heard_from_for_the_peer_ttl_are_dropped(store: Store) -> None:
    s = store.make(peer_ttl=600)
    await s.announce(H, 1, now=1000.0)
    await s.announce(H, 2, now=1000.0, left=0)
    await s.announce(H, 3, now=1500.0)
    if s.swarms is None:  # the memory store expires in the background (Maintenance)
        s.tracker.swarms.expire(1601 - 600, 1_000_000)
    reply = await s.announce(H, 4, now=1601.0)
    assert ports(reply) == [6003]
    assert (reply[b"complete"], reply[b"incomplete"]) == (0, 2)
    assert await s.scrape(H) == {H: {b"complete": 0, b"downloaded": 0, b"incomplete": 2}}


@pytest_twisted.ensureDeferred
async def test_udp_announces_see_http_peers_of_their_family(store: Store) -> None:
    s = store.make()
    await s.announce(H, 1, ip="10.0.0.7", left=0)
    await s.announce(H, 2, ip="2001:db8::2", left=0)
    reply = await s.udp_announce(H, 3, "10.0.0.8")
    assert isinstance(reply, udp_client.AnnounceResponse)
    assert (reply.seeders, reply.leechers) == (2, 1)
    assert udp_client.decode_peers(reply.peers) == [("10.0.0.7", 6001)]
    reply = await s.udp_announce(H, 4, "2001:db8::4", left=0)
    assert isinstance(reply, udp_client.AnnounceResponse)
    assert udp_client.decode_peers(reply.peers, ipv6=True) == [("2001:db8::2", 6002)]
    http = await s.announce(H, 5, ip="10.0.0.9", left=0)
    assert set(ports(http)) == {6001, 6003}


@pytest_twisted.ensureDeferred
async def test_peers_of_the_announcers_network_come_first(store: Store) -> None:
    """One machine of a cluster fetches from the origin, the others from it: peers in the
    announcer's IPv4 /24 (or IPv6 /64) lead the reply, whatever their number."""
    s = store.make(max_peers=5)
    for peer in range(1, 40):  # 39 seeders elsewhere
        await s.announce(H, peer, ip=f"127.{peer}.0.1", left=0)
    await s.announce(H, 50, ip="127.0.9.50", left=0)  # the announcer's /24
    await s.announce(H, 51, ip="127.0.9.51")
    await s.announce(H, 52, ip="127.0.8.52", left=0)  # the next /24: not the same network
    for _ in range(10):
        got = ports(await s.announce(H, 60, ip="127.0.9.60"))
        assert len(got) == 5 and set(got[:2]) == {6050, 6051}


@pytest_twisted.ensureDeferred
async def test_the_reply_order_with_neighbours(store: Store) -> None:
    """A leecher gets its network's seeders, then its network's leechers, then the other
    seeders, then the other leechers; a seeder its network's leechers, the other leechers,
    its network's seeders, the other seeders."""
    s = store.make()
    far_seeders, far_leechers = {6001, 6002, 6003}, {6004, 6005, 6006}
    for peer in range(1, 7):
        await s.announce(H, peer, ip=f"127.{peer}.0.1", left=0 if peer <= 3 else 100)
    await s.announce(H, 50, ip="127.0.9.50", left=0)
    await s.announce(H, 51, ip="127.0.9.51")
    for _ in range(5):
        got = ports(await s.announce(H, 60, ip="127.0.9.60", numwant=8))
        assert got[:2] == [6050, 6051]
        assert set(got[2:5]) == far_seeders and set(got[5:]) == far_leechers
    for _ in range(5):
        got = ports(await s.announce(H, 61, ip="127.0.9.61", left=0, numwant=9))
        assert set(got[:2]) == {6051, 6060} and set(got[2:5]) == far_leechers
        assert got[5] == 6050 and set(got[6:]) == far_seeders


@pytest_twisted.ensureDeferred
async def test_a_crowded_network_hands_out_its_peers_at_random(store: Store) -> None:
    """More neighbours than a reply holds: each reply takes some of them, not always the
    same ones."""
    s = store.make(max_peers=5)
    for peer in range(1, 31):
        await s.announce(H, peer, ip=f"127.0.9.{peer}", left=0)
    seen: set[int] = set()
    for _ in range(20):
        got = ports(await s.announce(H, 60, ip="127.0.9.60"))
        assert len(got) == 5 and set(got) <= set(range(6001, 6031))
        seen.update(got)
    assert len(seen) >= 15
