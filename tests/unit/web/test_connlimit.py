"""Connections per address and in all, on the front protocol (every connection of the HTTP
listener, whatever it asks for), and the counts shared by workers."""

from __future__ import annotations

import mmap
import resource
from collections.abc import Iterator

import pytest
from helpers import Conn, FakeStore, Stack, announce_path, bdecode, build_stack
from twisted.internet.defer import succeed
from twisted.internet.testing import MemoryReactorClock

from weightless.cluster.sharedcount import SharedCounts, table_size
from weightless.web.connlimit import (
    ConnectionLimits,
    LocalCounts,
    default_max_connections,
    raise_open_file_limit,
)

HASH = bytes(range(20))


@pytest.fixture
def stack() -> Iterator[Stack]:
    s = build_stack(
        FakeStore(lambda: succeed(None)), MemoryReactorClock(), trusted_proxies=("10.0.0.0/8",)
    )
    s.front.limits = ConnectionLimits(per_address=4, total=0)
    s.front.doStart()
    yield s
    s.front.doStop()


def open_conns(stack: Stack, host: str, n: int) -> list[Conn]:
    return [Conn(stack, host, 40000 + i) for i in range(n)]


def test_per_address_limit_closes_the_next_connection_at_once(stack: Stack) -> None:
    conns = open_conns(stack, "203.0.113.7", 4)
    assert not any(c.closed for c in conns)
    extra = Conn(stack, "203.0.113.7", 50000)
    assert extra.closed
    extra.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert extra.transport.value() == b""  # nothing is read from it
    # another address is not affected
    assert not Conn(stack, "198.51.100.1").closed
    # a closed connection frees its place
    conns[0].protocol.connectionLost(None)
    assert not Conn(stack, "203.0.113.7", 50001).closed
    assert Conn(stack, "203.0.113.7", 50002).closed


def test_the_limit_holds_for_connections_handed_to_twisted_web(stack: Stack) -> None:
    conns = open_conns(stack, "203.0.113.7", 4)
    for c in conns:
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.replies()[0].status == 200
    assert Conn(stack, "203.0.113.7", 50000).closed
    for c in conns:
        c.protocol.connectionLost(None)
    assert stack.front.limits.open == 0


@pytest.mark.parametrize(
    ("first", "other", "shared"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", True),
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("::ffff:203.0.113.7", "203.0.113.7", True),
        ("203.0.113.7", "203.0.113.8", False),
    ],
)
def test_ipv6_clients_count_by_64_and_mapped_ipv4_as_ipv4(
    stack: Stack, first: str, other: str, shared: bool
) -> None:
    open_conns(stack, first, 4)
    assert Conn(stack, other).closed is shared


def test_a_whole_64_cannot_escape_the_limit(stack: Stack) -> None:
    conns = [Conn(stack, f"2001:db8:5:6::{i:x}") for i in range(1, 200)]
    assert sum(not c.closed for c in conns) == 4


def test_trusted_proxies_count_only_towards_the_total(stack: Stack) -> None:
    conns = open_conns(stack, "10.0.0.1", 20)
    assert not any(c.closed for c in conns)
    stack.front.limits.total = 25
    more = open_conns(stack, "10.0.0.1", 10)
    assert sum(not c.closed for c in more) == 5


def test_total_limit(stack: Stack) -> None:
    stack.front.limits.total = 6
    conns = [Conn(stack, f"198.51.100.{i}") for i in range(1, 10)]
    assert [c.closed for c in conns] == [False] * 6 + [True] * 3
    conns[0].protocol.connectionLost(None)
    assert not Conn(stack, "198.51.100.50").closed
    assert stack.front.limits.refused == 3


def test_zero_means_no_limit_per_address(stack: Stack) -> None:
    stack.front.limits.per_address = 0
    assert not any(c.closed for c in open_conns(stack, "203.0.113.7", 300))


def test_an_admitted_connection_is_served(stack: Stack) -> None:
    conn = Conn(stack)
    reply = conn.get(announce_path(HASH))
    assert b"peers" in bdecode(reply.body)


def test_local_counts_forget_closed_addresses() -> None:
    counts = LocalCounts()
    limits = ConnectionLimits(per_address=2, counts=counts)
    keys = [limits.admit(f"198.51.100.{i}") for i in range(100)]
    for key in keys:
        limits.release(key)
    assert len(counts) == 0


def shared_tables(workers: int, slots: int = 1024) -> tuple[mmap.mmap, list[SharedCounts]]:
    memory = mmap.mmap(-1, table_size(workers, slots))
    return memory, [SharedCounts(memory, i, workers, b"k" * 32) for i in range(workers)]


def test_shared_counts_sum_every_workers_connections() -> None:
    _, tables = shared_tables(3)
    limits = [ConnectionLimits(per_address=5, counts=t) for t in tables]
    admitted = [limits[i % 3].admit("203.0.113.7") for i in range(8)]
    assert sum(key is not None for key in admitted) == 5  # not 5 per worker
    assert all(t.count("203.0.113.7") == 5 for t in tables)
    limits[1].release(admitted[1])
    assert limits[2].admit("203.0.113.7") is not None
    assert limits[0].admit("203.0.113.7") is None
    assert tables[0].count("198.51.100.1") == 0


def test_a_restarted_worker_starts_from_zero_and_keeps_the_others() -> None:
    memory, tables = shared_tables(2)
    for _ in range(3):
        tables[0].add("203.0.113.7", 1)
        tables[1].add("203.0.113.7", 1)
    assert tables[0].count("203.0.113.7") == 6
    SharedCounts(memory, 1, 2, b"k" * 32)  # worker 1 again: its connections died with it
    assert tables[0].count("203.0.113.7") == 3


def test_shared_counts_slots_depend_on_the_key() -> None:
    memory = mmap.mmap(-1, table_size(1, 1 << 16))
    a = SharedCounts(memory, 0, 1, b"a" * 32)
    b = SharedCounts(memory, 0, 1, b"b" * 32)
    ips = [f"198.51.100.{i}" for i in range(50)]
    assert [a._slot(ip) for ip in ips] != [b._slot(ip) for ip in ips]


def test_open_file_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        if hard != resource.RLIM_INFINITY and soft > 64:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 1, hard))
        limit = raise_open_file_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == limit
        if hard != resource.RLIM_INFINITY:
            assert limit == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_default_max_connections_keeps_a_reserve() -> None:
    assert default_max_connections(1024) == 960
    assert default_max_connections(1 << 20) == (1 << 20) - 64
    assert default_max_connections(100) == 50
