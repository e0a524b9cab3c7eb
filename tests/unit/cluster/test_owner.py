"""Which worker owns a swarm (weightless.cluster.owner): stable, spread over the workers, the
same for every hash of one registry entry, and the kernel program that steers UDP announces
handed to the socket as the kernel expects it."""

from __future__ import annotations

import ctypes
import hashlib
import random
import socket
import struct
from collections import Counter
from typing import Any

import pytest

from weightless.cluster import owner
from weightless.cluster.owner import owner_of, steering_program
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.catalog import Catalog, CatalogEntry
from weightless.tracker.core import Policy, Tracker
from weightless.tracker.swarm import SwarmStore


def test_the_owner_is_the_first_four_bytes_modulo_the_workers() -> None:
    key = bytes.fromhex("00000007") + bytes(16)
    assert [owner_of(key, n) for n in (1, 2, 3, 4, 8)] == [0, 1, 1, 3, 7]
    big = bytes.fromhex("ffffffff") + b"\x01" * 16
    assert owner_of(big, 5) == 0xFFFFFFFF % 5
    assert owner_of(big, 5) == owner_of(big[:4] + bytes(16), 5)  # the rest does not matter


def test_stable_across_calls_and_processes() -> None:
    rng = random.Random(1)
    keys = [rng.randbytes(20) for _ in range(100)]
    first = [owner_of(k, 4) for k in keys]
    assert [owner_of(k, 4) for k in keys] == first
    # no per-process salt (unlike hash()): a fixed key has a fixed owner
    assert owner_of(hashlib.sha1(b"model").digest(), 4) == 3  # 1d06a0d7... % 4


@pytest.mark.parametrize("workers", [2, 3, 4, 7])
def test_spread_evenly_over_the_workers(workers: int) -> None:
    per = Counter(owner_of(hashlib.sha1(str(i).encode()).digest(), workers) for i in range(7000))
    assert sorted(per) == list(range(workers))
    expected = 7000 / workers
    assert all(abs(n - expected) < expected * 0.15 for n in per.values()), per


def tracker(catalog: Catalog, open_: bool = False) -> Tracker:
    rng = random.Random(0)
    return Tracker(
        Policy(open=open_), catalog, SwarmStore(rng.random), PendingWrites(), None, None, rng.random
    )


def test_both_hashes_of_a_hybrid_entry_go_to_one_owner() -> None:
    catalog = Catalog()
    rng = random.Random(2)
    entries = [CatalogEntry(rng.randbytes(32).hex(), rng.randbytes(20).hex(), 0) for _ in range(50)]
    for entry in entries:
        catalog.add(entry)
    routing = tracker(catalog)
    for workers in (2, 3, 8):
        for entry in entries:
            owners = set()
            for wire in entry.wire_hashes():
                key = routing.route_key(wire)
                assert key == entry.swarm_key
                owners.add(owner_of(key, workers))
            assert owners == {owner_of(entry.swarm_key, workers)}
    # the v1 hash alone would often have gone elsewhere: the routing is what joins them
    apart = sum(
        owner_of(bytes.fromhex(e.v1_info_hash or ""), 8) != owner_of(e.swarm_key, 8)
        for e in entries
    )
    assert apart > 25


def test_steering_program_shape() -> None:
    program = steering_program(6)
    assert program[3] == (0x94, 0, 0, 6)  # A %= workers
    assert program[-1] == (0x06, 0, 0, 0xFFFFFFFF)  # not an announce: past the group
    for code, jt, jf, _ in program:
        assert 0 <= jt < len(program) and 0 <= jf < len(program) and code < 0x100


class FakeSocket:
    def __init__(self) -> None:
        self.set: list[tuple[int, int, bytes]] = []
        self.program: bytes = b""

    def setsockopt(self, level: int, name: int, value: bytes) -> None:
        self.set.append((level, name, value))
        length, address = struct.unpack("HL", value)
        self.program = ctypes.string_at(address, 8 * length)  # while the caller holds it


def test_attach_steering_hands_the_kernel_a_sock_fprog() -> None:
    fake: Any = FakeSocket()
    owner.attach_steering(fake, 3)
    ((level, name, value),) = fake.set
    assert (level, name) == (socket.SOL_SOCKET, owner.SO_ATTACH_REUSEPORT_CBPF)
    assert struct.unpack("HL", value)[0] == len(steering_program(3))
    decoded = [
        struct.unpack("=HBBI", fake.program[i : i + 8]) for i in range(0, len(fake.program), 8)
    ]
    assert decoded == steering_program(3)
