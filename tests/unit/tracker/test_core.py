import hashlib
import hmac
import random
from typing import Any
from urllib.parse import quote_from_bytes

import bencodepy
import pytest
import udp_client
from udp_harness import Harness

from weightless.netaddr import normalize_ip
from weightless.tracker.accounting import Accounting, PendingWrites
from weightless.tracker.catalog import Catalog, CatalogEntry
from weightless.tracker.core import Policy, Tracker
from weightless.tracker.swarm import SwarmStore
from weightless.wire.passkey import Passkeys

V2 = hashlib.sha256(b"hybrid").hexdigest()
V1 = hashlib.sha1(b"hybrid").hexdigest()
SECRET = b"s3cret"


def make(open_: bool = True, secret: bytes | None = None, **policy: Any) -> Tracker:
    rng = random.Random(1)
    pending = PendingWrites()
    passkeys = Passkeys(secret) if secret else None
    accounting = Accounting(pending, 3600) if secret else None
    return Tracker(
        Policy(open=open_, **policy),
        Catalog(),
        SwarmStore(rng.random),
        pending,
        passkeys,
        accounting,
        rng.random,
    )


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
        if v is not None  # None: the field is left out
    ).encode()


def announce(
    t: Tracker,
    hash_: bytes,
    peer: int,
    ip: str = "10.0.0.1",
    now: float = 1000.0,
    passkey: bytes | None = None,
    **fields: Any,
) -> dict[bytes, Any]:
    reply: dict[bytes, Any] = bencodepy.decode(
        t.http_announce(q(hash_, peer, **fields), passkey, ip, now)
    )
    return reply


def ports(reply: dict[bytes, Any]) -> set[int]:
    peers = reply[b"peers"]
    return {int.from_bytes(peers[i + 4 : i + 6], "big") for i in range(0, len(peers), 6)}


H = b"\xff" * 20


def test_peers_see_each_other_never_themselves() -> None:
    t = make()
    first = announce(t, H, 1)
    assert first[b"peers"] == b"" and first[b"incomplete"] == 1
    second = announce(t, H, 2)
    assert ports(second) == {6001}
    assert (second[b"complete"], second[b"incomplete"]) == (0, 2)
    assert ports(announce(t, H, 1)) == {6002}
    assert first[b"interval"] == 1800 and first[b"min interval"] == 900


def test_a_restarted_client_does_not_double() -> None:
    t = make()
    announce(t, H, 1)
    reply = announce(t, H, 1, peer_id=b"-XX0002-restarted000")
    assert reply[b"incomplete"] == 1


def test_seeder_gets_leechers_first_then_seeders_to_fill_the_reply() -> None:
    t = make()
    for peer in range(1, 6):
        announce(t, H, peer, left=0)
    for peer in range(6, 9):
        announce(t, H, peer)
    # every leecher, then seeders up to numwant, never itself
    for _ in range(20):
        got = ports(announce(t, H, 1, left=0, numwant=5))
        assert len(got) == 5 and {6006, 6007, 6008} < got and 6001 not in got
    reply = announce(t, H, 1, left=0)
    assert ports(reply) == {6002, 6003, 6004, 6005, 6006, 6007, 6008}
    assert (reply[b"complete"], reply[b"incomplete"]) == (5, 3)
    # fewer wanted than there are leechers: leechers only
    for _ in range(20):
        assert ports(announce(t, H, 1, left=0, numwant=2)) < {6006, 6007, 6008}


def test_a_seeder_fetching_metadata_among_seeders_gets_them() -> None:
    """aria2 announces left=0 while it fetches a magnet's metadata."""
    t = make()
    announce(t, H, 1, left=0)
    announce(t, H, 2, left=0, ip="2001:db8::2")
    reply = announce(t, H, 3, left=0)
    assert ports(reply) == {6001}
    assert len(reply[b"peers6"]) == 18 and reply[b"peers6"][-2:] == (6002).to_bytes(2, "big")


def test_stopped_removes_the_peer_and_returns_no_peers() -> None:
    t = make()
    announce(t, H, 1)
    reply = announce(t, H, 2, event="stopped")
    assert reply[b"peers"] == b"" and reply[b"incomplete"] == 1
    assert ports(announce(t, H, 3)) == {6001}


def test_numwant_default_and_cap_from_max_peers() -> None:
    t = make(max_peers=5)
    for i in range(20):
        announce(t, H, i)
    assert len(ports(announce(t, H, 99))) == 5
    assert len(ports(announce(t, H, 99, numwant=3))) == 3
    assert len(ports(announce(t, H, 99, numwant=500))) == 5
    assert len(ports(announce(t, H, 99, numwant=0))) == 0


def test_non_compact_with_and_without_peer_id() -> None:
    t = make()
    announce(t, H, 1, ip="10.0.0.7")
    peers = announce(t, H, 2, compact=0)[b"peers"]
    assert peers == [{b"ip": b"10.0.0.7", b"port": 6001, b"peer id": b"-XX0001-000000000001"}]
    peers = announce(t, H, 2, compact=0, no_peer_id=1)[b"peers"]
    assert peers == [{b"ip": b"10.0.0.7", b"port": 6001}]


def test_ipv6_peers_in_peers6_and_mapped_addresses_normalized() -> None:
    t = make()
    announce(t, H, 1, ip="2001:db8::1")
    announce(t, H, 2, ip="::ffff:192.0.2.9")
    reply = announce(t, H, 3, ip="2001:db8::3")
    assert reply[b"peers6"][:16] == bytes.fromhex("20010db8000000000000000000000001")
    assert reply[b"peers"] == bytes([192, 0, 2, 9]) + (6002).to_bytes(2, "big")
    assert normalize_ip("::ffff:10.1.2.3") == "10.1.2.3"
    assert normalize_ip("::FFFF:10.1.2.3") == "10.1.2.3"


def registered(t: Tracker, completions: int = 0) -> CatalogEntry:
    entry = CatalogEntry(V2, V1, completions)
    t.catalog.add(entry)
    return entry


def test_hybrid_peer_lists_follow_the_announced_hash_counts_are_merged() -> None:
    t = make(open_=False)
    registered(t)
    v1, v2 = bytes.fromhex(V1), bytes.fromhex(V2)
    announce(t, v1, 1)  # a v1-only client (rtorrent, Transmission)
    reply = announce(t, v2[:20], 2)  # libtorrent: both hashes
    assert ports(reply) == set() and reply[b"incomplete"] == 2
    reply = announce(t, v1, 2)
    assert ports(reply) == {6001} and reply[b"incomplete"] == 2  # peer 2 is counted once
    # a client that sends the full 32-byte v2 hash is on the truncated hash's list
    reply = announce(t, v2, 3)
    assert ports(reply) == {6002} and reply[b"incomplete"] == 3
    reply = announce(t, v1, 4, left=0)
    assert ports(reply) == {6001, 6002}
    assert (reply[b"complete"], reply[b"incomplete"]) == (1, 3)
    reply = announce(t, v2[:20], 5, left=0)
    assert ports(reply) == {6002, 6003}
    assert (reply[b"complete"], reply[b"incomplete"]) == (2, 3)
    # non-compact replies follow the hash too
    listed = announce(t, v1, 6, compact=0)[b"peers"]
    assert {p[b"port"] for p in listed} == {6001, 6002, 6004}


def test_hybrid_peer_on_both_hashes_counted_once_as_it_changes_and_leaves() -> None:
    t = make(open_=False)
    registered(t)
    v1, v2 = bytes.fromhex(V1), bytes.fromhex(V2)[:20]
    announce(t, v1, 1)
    announce(t, v2, 1)
    announce(t, v2, 2)
    scrape = scraped(t, v1, v2)
    assert scrape[v1] == scrape[v2] == {b"complete": 0, b"downloaded": 0, b"incomplete": 2}
    announce(t, v1, 1, left=0)  # finished (announced under v1 first): a seeder under both
    reply = announce(t, v2, 2)
    assert (reply[b"complete"], reply[b"incomplete"]) == (1, 1) and ports(reply) == {6001}
    announce(t, v1, 1, event="stopped", left=0)  # gone from the v1 list only
    reply = announce(t, v2, 2)
    assert (reply[b"complete"], reply[b"incomplete"]) == (1, 1) and ports(reply) == {6001}
    announce(t, v2, 1, event="stopped", left=0)
    reply = announce(t, v2, 2)
    assert (reply[b"complete"], reply[b"incomplete"]) == (0, 1) and ports(reply) == set()
    assert t.swarms.peer_count == 1
    assert t.catalog.entries[V2].completions == 1


def scraped(t: Tracker, *hashes: bytes) -> dict[bytes, Any]:
    query = b"&".join(b"info_hash=" + quote_from_bytes(h).encode() for h in hashes)
    files: dict[bytes, Any] = bencodepy.decode(t.http_scrape(query, None))[b"files"]
    return files


def test_completions_count_once_per_peer_across_aliases() -> None:
    t = make(open_=False)
    entry = registered(t, completions=7)
    v1, v2 = bytes.fromhex(V1), bytes.fromhex(V2)[:20]
    announce(t, v1, 1)
    announce(t, v2, 1)
    reply = announce(t, v1, 1, event="completed", left=0)
    assert reply[b"downloaded"] == 8
    # libtorrent announces completion under both hashes of a hybrid torrent
    reply = announce(t, v2, 1, event="completed", left=0)
    assert reply[b"downloaded"] == 8 and reply[b"complete"] == 1
    assert entry.completions == 8
    assert t.pending.completions == {V2: 1}


LEECHING = {"left": 100}


@pytest.mark.parametrize(
    ("steps", "counted"),
    [
        # a known leecher reaches left=0: with the event, without it, in a stopped announce
        ([LEECHING, {"left": 0, "event": "completed"}], 1),
        ([LEECHING, {"left": 0}], 1),
        ([LEECHING, {"left": 0, "event": "stopped"}], 1),
        ([{"left": 100, "event": "started"}, LEECHING, {"left": 0, "event": "stopped"}], 1),
        # once per peer per download: a late completed does not count again
        ([LEECHING, {"left": 0}, {"left": 0, "event": "completed"}], 1),
        ([LEECHING, {"left": 0}, {"left": 0}, {"left": 0, "event": "stopped"}], 1),
        ([LEECHING, {"left": 0, "event": "completed"}, {"left": 0, "event": "completed"}], 1),
        # a seeder from its first announce never counts
        ([{"left": 0, "event": "started"}, {"left": 0, "event": "completed"}], 0),
        ([{"left": 0}, {"left": 0, "event": "stopped"}], 0),
        # event=completed from a peer never seen (a restart, a failover, DHT): it finished
        ([{"left": 0, "event": "completed"}], 1),
        ([{"event": "completed", "left": None}], 1),  # no left: the event says it is done
        ([{"left": 0, "event": "completed"}, {"left": 0, "event": "completed"}], 1),
        ([{"left": 0, "event": "completed"}, {"left": 0}, {"left": 0, "event": "stopped"}], 1),
        # ... and then leaves: a late or repeated completed is not a second download
        (
            [
                {"left": 0, "event": "completed"},
                {"left": 0, "event": "stopped"},
                {"left": 0, "event": "completed"},
            ],
            1,
        ),
        ([LEECHING, {"left": 0, "event": "stopped"}, {"left": 0, "event": "completed"}], 1),
        (
            [
                LEECHING,
                {"left": 0},
                {"left": 0, "event": "stopped"},
                {"left": 0, "event": "completed"},
            ],
            1,
        ),
        ([{"left": 0, "event": "stopped"}], 0),
        # not finished: a stop, or a completed event with bytes left
        ([LEECHING, {"left": 100, "event": "stopped"}], 0),
        ([LEECHING, {"left": 5, "event": "completed"}], 0),
        # a stopped leecher is forgotten: coming back as a seeder is not a download seen here
        ([LEECHING, {"left": 100, "event": "stopped"}, {"left": 0}], 0),
        # a seeder that lost its data and downloads again: a second download
        ([{"left": 0}, LEECHING, {"left": 0}], 1),
    ],
)
@pytest.mark.parametrize("registry", [True, False], ids=["registered", "open"])
def test_completions_without_the_event_never_twice_never_for_a_seeder(
    steps: list[dict[str, Any]], counted: int, registry: bool
) -> None:
    t = make(open_=not registry)
    h = bytes.fromhex(V1)
    entry = registered(t, completions=3) if registry else None
    announce(t, h, 9)  # another leecher keeps an open swarm alive
    reply: dict[bytes, Any] = {}
    for n, fields in enumerate(steps):
        reply = announce(t, h, 1, now=1000.0 + n, **fields)
    assert reply[b"downloaded"] == counted + (3 if registry else 0)
    assert scraped(t, h)[h][b"downloaded"] == counted + (3 if registry else 0)
    if entry is not None:
        assert entry.completions == 3 + counted
        assert t.pending.completions == ({V2: counted} if counted else {})


@pytest.mark.parametrize(
    "finish",
    [
        [("v1", {"left": 0}), ("v2", {"left": 0, "event": "completed"})],
        [("v2", {"left": 0, "event": "completed"}), ("v1", {"left": 0, "event": "completed"})],
        [("v1", {"left": 0, "event": "stopped"}), ("v2", {"left": 0, "event": "stopped"})],
        [("v2", {"left": 0}), ("v1", {"left": 0, "event": "stopped"}), ("v2", {"left": 0})],
    ],
)
def test_a_hybrid_download_counts_once_whichever_hash_reports_it(
    finish: list[tuple[str, dict[str, Any]]],
) -> None:
    t = make(open_=False)
    entry = registered(t)
    hashes = {"v1": bytes.fromhex(V1), "v2": bytes.fromhex(V2)}
    announce(t, hashes["v1"], 1)
    announce(t, hashes["v2"], 1)
    for name, fields in finish:
        announce(t, hashes[name], 1, **fields)
    assert entry.completions == 1


def test_listed_mode_refuses_unregistered_hashes() -> None:
    t = make(open_=False)
    reply = announce(t, H, 1)
    assert b"unregistered" in reply[b"failure reason"]


def test_blocked_hash_is_refused_even_in_open_mode_and_skipped_by_scrape() -> None:
    t = make()
    t.catalog.block([H.hex()])
    assert b"blocked" in announce(t, H, 1)[b"failure reason"]
    other = b"\x01" * 20
    announce(t, other, 1)
    query = b"info_hash=" + quote_from_bytes(H).encode()
    query += b"&info_hash=" + quote_from_bytes(other).encode()
    files = bencodepy.decode(t.http_scrape(query, None))[b"files"]
    assert set(files) == {other}
    assert files[other] == {b"complete": 0, b"downloaded": 0, b"incomplete": 1}


def test_scrape_reports_per_requested_hash() -> None:
    t = make(open_=False)
    registered(t, completions=3)
    v1, v2 = bytes.fromhex(V1), bytes.fromhex(V2)
    announce(t, v1, 1, left=0)
    announce(t, v2, 2)
    announce(t, v1, 3)
    announce(t, v2, 3)
    expected = {b"complete": 1, b"downloaded": 3, b"incomplete": 2}
    assert scraped(t, v1, v2[:20]) == {v1: expected, v2[:20]: expected}
    # the full 32-byte hash: answered under the hash as sent
    assert scraped(t, v2) == {v2: expected}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"info_hash": b"\x01" * 19}, b"invalid info_hash"),
        ({"port": "x"}, b"invalid port"),
        ({"event": "bogus"}, b"invalid event"),
        ({"uploaded": "many"}, b"invalid uploaded"),
    ],
)
def test_bad_input_gets_a_failure_reason(fields: dict[str, Any], reason: bytes) -> None:
    t = make()
    assert reason in announce(t, H, 1, **fields)[b"failure reason"]


def passkey(user: str) -> bytes:
    return f"{user}.{hmac.new(SECRET, user.encode(), hashlib.sha256).hexdigest()}".encode()


def test_passkeys_required_when_secret_is_set() -> None:
    t = make(secret=SECRET)
    assert b"passkey" in announce(t, H, 1)[b"failure reason"]
    bad = b"alice." + b"0" * 64
    assert announce(t, H, 1, passkey=bad)[b"failure reason"] == b"invalid passkey"
    assert b"failure reason" not in announce(t, H, 1, passkey=passkey("alice"))


def test_passkey_path_works_without_a_secret() -> None:
    t = make()
    assert b"failure reason" not in announce(t, H, 1, passkey=b"anything")


def test_traffic_deltas_are_accounted_per_user() -> None:
    t = make(secret=SECRET)
    key = passkey("alice")
    announce(t, H, 1, passkey=key, event="started", uploaded=0, downloaded=0)
    announce(t, H, 1, passkey=key, uploaded=100, downloaded=1000)
    announce(t, H, 1, passkey=key, uploaded=150, downloaded=1500)
    assert t.pending.traffic == {"alice": [150, 1500]}
    # the client restarted: its totals start from zero again, never negative or doubled
    announce(t, H, 1, passkey=key, event="started", uploaded=10, downloaded=20)
    assert t.pending.traffic == {"alice": [160, 1520]}
    announce(t, H, 1, passkey=key, event="stopped", uploaded=30, downloaded=20)
    assert t.pending.traffic == {"alice": [180, 1520]}


# -- --open is bounded by --max-swarms: beyond it a new hash gets the failure reason
# "tracker is full" (HTTP and UDP), while swarms already held and registered hashes go on
# being served


def h(n: int) -> bytes:
    return n.to_bytes(20, "big")


def test_a_new_hash_beyond_the_cap_is_refused_over_http() -> None:
    t = make(max_swarms=3)
    for n in range(3):
        assert b"failure reason" not in announce(t, h(n), 1)
    for n in range(3, 10):
        assert announce(t, h(n), 1) == {b"failure reason": b"tracker is full"}
    assert len(t.swarms.swarms) == 3 and t.swarms.peer_count == 3
    # swarms already tracked keep taking peers; a stop of an unknown hash is harmless
    assert b"failure reason" not in announce(t, h(0), 2)
    assert b"failure reason" not in announce(t, h(20), 3, event="stopped")
    # a swarm that empties frees its place
    announce(t, h(1), 1, event="stopped")
    assert b"failure reason" not in announce(t, h(11), 1)
    assert announce(t, h(12), 1) == {b"failure reason": b"tracker is full"}


def test_registered_hashes_are_served_whatever_the_cap() -> None:
    t = make(max_swarms=1)
    entry = CatalogEntry("ab" * 32, None, 0)
    t.catalog.load([entry], [])
    announce(t, h(0), 1)
    assert announce(t, h(1), 1) == {b"failure reason": b"tracker is full"}
    wire = next(k for k, (_, e) in t.catalog.by_wire.items() if e is entry)
    assert b"failure reason" not in announce(t, wire, 1)


def test_a_new_hash_beyond_the_cap_gets_a_bep15_error() -> None:
    harness = Harness()
    harness.tracker.policy = Policy(open=True, max_swarms=2)
    assert isinstance(harness.announce(("10.0.0.1", 6881), h(1)), udp_client.AnnounceResponse)
    assert isinstance(harness.announce(("10.0.0.1", 6881), h(2)), udp_client.AnnounceResponse)
    reply = harness.announce(("10.0.0.1", 6881), h(3))
    assert reply == udp_client.ErrorResponse(42, "tracker is full")
    assert isinstance(harness.announce(("10.0.0.2", 6882), h(2)), udp_client.AnnounceResponse)


# one peer's announces over HTTP and UDP (BEP 15), under either hash of a hybrid; "restart"
# is a tracker restarted without its swarm file (the registry keeps the count)
HTTP_LEECH = ("http", "v2", {"left": 100})
UDP_LEECH = ("udp", "v1", {"left": 100})


@pytest.mark.parametrize(
    ("steps", "counted"),
    [
        ([HTTP_LEECH, ("udp", "v1", {"left": 0, "event": "completed"})], 1),
        ([UDP_LEECH, ("http", "v2", {"left": 0})], 1),
        ([UDP_LEECH, ("udp", "v1", {"left": 0, "event": "stopped"})], 1),
        ([HTTP_LEECH, ("udp", "v1", {"left": 0, "event": "stopped"})], 1),
        # libtorrent reports under both hashes, in either order, over either protocol
        (
            [
                HTTP_LEECH,
                UDP_LEECH,
                ("udp", "v1", {"left": 0, "event": "completed"}),
                ("http", "v2", {"left": 0, "event": "completed"}),
            ],
            1,
        ),
        (
            [
                HTTP_LEECH,
                UDP_LEECH,
                ("http", "v2", {"left": 0, "event": "completed"}),
                ("udp", "v1", {"left": 0, "event": "completed"}),
            ],
            1,
        ),
        # a peer the tracker never saw, under one hash or both
        ([("udp", "v1", {"left": 0, "event": "completed"})], 1),
        (
            [
                ("http", "v1", {"left": 0, "event": "completed"}),
                ("udp", "v2", {"left": 0, "event": "completed"}),
            ],
            1,
        ),
        (
            [
                ("udp", "v2", {"left": 0, "event": "completed"}),
                ("udp", "v2", {"left": 0, "event": "stopped"}),
                ("http", "v1", {"left": 0, "event": "completed"}),
            ],
            1,
        ),
        # a seeder starting up over UDP: never a completion
        (
            [
                ("udp", "v1", {"left": 0}),
                ("http", "v2", {"left": 0}),
                ("udp", "v1", {"left": 0, "event": "stopped"}),
            ],
            0,
        ),
        # the tracker restarted between the leecher's announces: the completed event counts
        ([HTTP_LEECH, "restart", ("http", "v2", {"left": 0, "event": "completed"})], 1),
        (
            [
                UDP_LEECH,
                "restart",
                ("udp", "v1", {"left": 0, "event": "completed"}),
                ("http", "v2", {"left": 0, "event": "completed"}),
            ],
            1,
        ),
        # ... and a seeder's plain left=0 after the restart does not
        ([HTTP_LEECH, "restart", ("http", "v2", {"left": 0})], 0),
        # counted before the restart, its completed arrives again after it: the new process
        # cannot tell, and counts what the client says it finished
        (
            [
                HTTP_LEECH,
                ("http", "v2", {"left": 0, "event": "completed"}),
                "restart",
                ("http", "v1", {"left": 0}),
                ("http", "v2", {"left": 0}),
            ],
            1,
        ),
    ],
)
def test_completions_once_per_peer_over_http_and_udp_and_a_restart(
    steps: list[Any], counted: int
) -> None:
    hashes = {"v1": bytes.fromhex(V1), "v2": bytes.fromhex(V2)[:20]}
    entry = CatalogEntry(V2, V1, 0)

    def start() -> Harness:
        h = Harness(open_=False)
        h.tracker.catalog.add(entry)
        return h

    h = start()
    h.announce(("10.1.2.3", 6009), hashes["v2"])  # another peer, so the swarm stays
    for n, step in enumerate(steps):
        h.now = 1000.0 + n
        if step == "restart":
            h = start()
            continue
        proto, which, fields = step
        if proto == "http":
            reply = announce(h.tracker, hashes[which], 1, ip="10.1.2.3", now=h.now, **fields)
            assert b"failure reason" not in reply
        else:
            udp_fields = {**fields, "event": UDP_EVENTS[fields.get("event", "")]}
            assert isinstance(
                h.announce(("10.1.2.3", 6001), hashes[which], **udp_fields),
                udp_client.AnnounceResponse,
            )
    assert entry.completions == counted
    assert scraped(h.tracker, hashes["v1"])[hashes["v1"]][b"downloaded"] == counted


UDP_EVENTS = {"": 0, "completed": 1, "started": 2, "stopped": 3}


def test_completions_are_forgotten_after_the_peer_ttl() -> None:
    t = make(open_=False)
    entry = registered(t)
    h = bytes.fromhex(V1)
    announce(t, h, 2)
    announce(t, h, 1, left=0, event="completed", now=1000.0)
    announce(t, h, 1, left=0, event="stopped", now=1001.0)
    while not t.swarms.expire(1600 - 3600, 1000):  # an expiry pass at 1600, TTL 3600 s
        pass
    announce(t, h, 1, left=0, event="completed", now=1600.0)  # within the TTL: the same one
    assert entry.completions == 1
    announce(t, h, 1, left=0, event="stopped", now=1601.0)
    while not t.swarms.expire(4700 - 3600, 1000):  # a pass at 4700
        pass
    assert not t.swarms.finished  # the memory of completions is bounded by the TTL
    announce(t, h, 1, left=0, event="completed", now=4700.0)  # a new download, much later
    assert entry.completions == 2
