"""Peers of the announcer's own network (IPv4 /24, IPv6 /64) first in a reply, then the rest
at random; a seeder still gets every leecher before any seeder. Over HTTP (compact and dict
peers) and UDP, IPv4 and IPv6, through the tracker's rules (weightless.tracker.core) and the
swarm's index by network (weightless.tracker.swarm)."""

from __future__ import annotations

import random
import socket
from typing import Any

import bencodepy
import pytest
import udp_client
from udp_harness import Harness

from weightless.netaddr import network_key, pack_ip
from weightless.tracker import snapshot
from weightless.tracker.swarm import PeerGroup, SwarmStore, reply_order

from .test_core import q

H = b"\x42" * 20


def peer_port(n: int) -> int:
    return 7000 + n


def http(h: Harness, ip: str, n: int, compact: bool = True, **fields: Any) -> list[tuple[str, int]]:
    """The peers of one HTTP announce of peer ``n`` from ``ip``, in reply order."""
    query = q(H, n, port=peer_port(n), numwant=fields.pop("numwant", 50), **fields)
    if not compact:
        query += b"&compact=0"
    reply = bencodepy.decode(h.tracker.http_announce(query, None, ip, h.now))
    assert b"failure reason" not in reply, reply
    if not compact:
        return [(p[b"ip"].decode(), p[b"port"]) for p in reply[b"peers"]]
    found = udp_client.decode_peers(reply.get(b"peers", b""))
    return found + udp_client.decode_peers(reply.get(b"peers6", b""), ipv6=True)


def udp(h: Harness, ip: str, n: int, **fields: Any) -> list[tuple[str, int]]:
    reply = h.announce((ip, peer_port(n)), H, num_want=fields.pop("numwant", 50), **fields)
    assert isinstance(reply, udp_client.AnnounceResponse), reply
    return udp_client.decode_peers(reply.peers, ipv6=":" in ip)


def joined(h: Harness, peers: list[tuple[str, int, bool]]) -> None:
    """(ip, n, seeding) peers announce once (UDP, so that the tracker sees their own port)."""
    for ip, n, seeding in peers:
        udp(h, ip, n, left=0 if seeding else 100)


NETWORKS = {
    "v4": ("10.7.3.{}", "10.7.4.{}", "192.0.2.{}"),
    "v6": ("2001:db8:0:1::{:x}", "2001:db8:0:2::{:x}", "2001:db8:5::{:x}"),
}


def swarm(family: str) -> tuple[Harness, list[tuple[str, int]], list[tuple[str, int]]]:
    """30 peers elsewhere and, on the announcer's network, 2 seeders and 3 leechers."""
    own, near_net, far = NETWORKS[family]
    h = Harness()
    others = [(far.format(i + 1), i, i % 3 == 0) for i in range(30)]
    others += [(near_net.format(i + 1), 100 + i, i % 2 == 0) for i in range(5)]  # next /24
    nearby = [(own.format(i + 1), 200 + i, i < 2) for i in range(5)]
    mixed = others[:10] + nearby + others[10:]
    joined(h, mixed)
    seeders = [(ip, peer_port(n)) for ip, n, s in nearby if s]
    leechers = [(ip, peer_port(n)) for ip, n, s in nearby if not s]
    return h, seeders, leechers


ASK = {
    "http": lambda h, ip, n, **kw: http(h, ip, n, **kw),
    "http-dict": lambda h, ip, n, **kw: http(h, ip, n, compact=False, **kw),
    "udp": lambda h, ip, n, **kw: udp(h, ip, n, **kw),
}


@pytest.mark.parametrize("family", ["v4", "v6"])
@pytest.mark.parametrize("how", sorted(ASK))
def test_a_leecher_gets_its_network_first_seeders_before_leechers(family: str, how: str) -> None:
    h, seeders, leechers = swarm(family)
    me = NETWORKS[family][0].format(99)
    for _ in range(5):
        got = ASK[how](h, me, 300)
        if family == "v6" and how == "udp":
            got = [(socket.inet_ntop(socket.AF_INET6, pack_ip(ip)), p) for ip, p in got]
        assert set(got[:2]) == set(seeders), got
        assert set(got[2:5]) == set(leechers), got
        assert len(got) == len(set(got)) == 40  # everyone else, once
        assert all(network_key(pack_ip(ip)) != network_key(pack_ip(me)) for ip, _ in got[5:])


@pytest.mark.parametrize("family", ["v4", "v6"])
@pytest.mark.parametrize("how", sorted(ASK))
def test_a_seeder_gets_every_leecher_before_any_seeder(family: str, how: str) -> None:
    h, seeders, leechers = swarm(family)
    me = NETWORKS[family][0].format(98)
    got = ASK[how](h, me, 301, left=0)
    everyone = set(got)
    far_leechers = 20 + 2  # 20 far away, 2 on the next network: i % 3 != 0, i % 2 != 0
    assert set(got[:3]) == set(leechers)
    assert all(p not in seeders for p in got[: 3 + far_leechers])
    assert set(got[3 + far_leechers : 5 + far_leechers]) == set(seeders)
    assert len(got) == len(everyone) == 40


@pytest.mark.parametrize("how", sorted(ASK))
def test_numwant_is_filled_from_the_network_first_a_random_sample_of_it(how: str) -> None:
    h = Harness()
    joined(h, [(f"10.9.9.{i + 1}", i, True) for i in range(40)])  # 40 seeders, one network
    joined(h, [(f"10.8.0.{i + 1}", 100 + i, True) for i in range(40)])
    samples = set()
    for n in range(20):
        got = ASK[how](h, "10.9.9.200", 300 + n, numwant=8)
        assert len(got) == len(set(got)) == 8
        assert all(ip.startswith("10.9.9.") and ip != "10.9.9.200" for ip, _ in got), got
        samples.add(frozenset(got))
    assert len(samples) > 5  # not the same peers to every one of them


def test_only_its_own_network_an_address_alone_there_gets_the_usual_reply() -> None:
    h = Harness()
    joined(h, [(f"10.1.{i}.1", i, i < 5) for i in range(20)])
    got = udp(h, "10.1.0.200", 300)  # 10.1.0.1 is a seeder on its /24
    assert got[0] == ("10.1.0.1", peer_port(0))
    got = udp(h, "10.200.0.1", 301)  # nobody on its network
    assert len(got) == 21 and all(p[1] < peer_port(5) for p in got[:5])  # seeders first


def test_a_peer_that_left_is_no_longer_offered_first() -> None:
    h = Harness()
    joined(h, [("10.3.3.3", 1, True), ("10.3.3.4", 2, True), ("10.4.0.1", 3, True)])
    udp(h, "10.3.3.4", 2, left=0, event=3)  # stopped
    assert udp(h, "10.3.3.9", 9) == [("10.3.3.3", peer_port(1)), ("10.4.0.1", peer_port(3))]
    h.now += 4000
    udp(h, "10.5.0.1", 5)
    while not h.tracker.swarms.expire(int(h.now) - 3600, 1000):
        pass
    assert udp(h, "10.3.3.10", 10) == [("10.5.0.1", peer_port(5))]


def check_nets(group: PeerGroup) -> None:
    """The index by network holds every peer of the group once, under its network."""
    seen = {}
    for net, found in group.nets.items():
        if isinstance(found, bytes):  # the one peer of its network
            assert network_key(found) == net and group.nearby(net) == [found]
            seen[found] = net
            continue
        assert len(found.keys) >= 2, net
        for i, addr in enumerate(found.keys):
            assert network_key(addr) == net and found.at[addr] == i
            seen[addr] = net
    assert set(seen) == set(group.index)


def test_the_index_by_network_follows_random_churn() -> None:
    rng = random.Random(7)
    store = SwarmStore(rng.random)
    key = b"k" * 20
    for step in range(3000):
        i = rng.randrange(60)
        addr = bytes([10, 0, i % 4, i]) + b"\x1a\xe1"
        if rng.random() < 0.3:
            store.remove(key, addr)
        else:
            store.put(key, addr, b"p" * 20, rng.random() < 0.4, step)
        if step % 500 == 0:
            store.expire(step - 100, 50)
    swarm = store.get(key)
    assert swarm is not None
    for group in swarm.groups:
        if group is not None:
            check_nets(group)


def test_the_order_rule_every_store_uses() -> None:
    # (seeders?, on the announcer's network?)
    assert reply_order(False) == ((True, True), (False, True), (True, False), (False, False))
    assert reply_order(True) == ((False, True), (False, False), (True, True), (True, False))
    assert network_key(bytes([192, 0, 2, 9, 0, 80])) == bytes([192, 0, 2])
    assert network_key(pack_ip("2001:db8:1:2::9")) == pack_ip("2001:db8:1:2::")[:8]


def test_a_restored_snapshot_orders_replies_as_before() -> None:
    h = Harness()
    joined(h, [("10.6.6.1", 1, True), ("10.6.6.2", 2, False), ("10.7.0.1", 3, True)])
    data = b"".join(snapshot.dump(h.tracker.swarms))
    again = Harness()
    snapshot.load(data, again.tracker.swarms, 0)
    for group in again.tracker.swarms.swarms[H].groups:
        if group is not None:
            check_nets(group)
    got = udp(again, "10.6.6.9", 9)
    assert set(got[:2]) == {("10.6.6.1", peer_port(1)), ("10.6.6.2", peer_port(2))}
