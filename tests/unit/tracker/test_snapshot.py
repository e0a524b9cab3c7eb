import random

import pytest

from weightless.tracker.snapshot import SnapshotError, dump, load
from weightless.tracker.swarm import SwarmStore


def v4(i: int) -> bytes:
    return i.to_bytes(4, "big") + b"\x1a\xe1"


def v6(i: int) -> bytes:
    return b"\x20\x01" + i.to_bytes(14, "big") + b"\x1a\xe1"


def peers(store: SwarmStore) -> set[tuple[bytes, bytes, int, bytes, int]]:
    """(swarm key, address, slot (4-7: the other hash's list), peer id, last seen)."""
    found = set()
    for key, swarm in store.swarms.items():
        groups = swarm.groups + (swarm.other.groups if swarm.other is not None else [])
        for slot, group in enumerate(groups):
            if group is None:
                continue
            for addr, pos in group.index.items():
                assert group.addrs[pos * group.width : (pos + 1) * group.width] == addr
                found.add(
                    (key, addr, slot, bytes(group.ids[pos * 20 : pos * 20 + 20]), group.seen[pos])
                )
    return found


def filled() -> SwarmStore:
    store = SwarmStore(random.Random(1).random)
    for i in range(2000):
        key = bytes([i % 7]) * 20
        addr = v6(i) if i % 5 == 0 else v4(i)
        store.put(key, addr, b"-XX0001-%012d" % i, i % 3 == 0, 100 + i % 2)
    store.swarms[bytes([1]) * 20].completions = 4
    # a hybrid entry's swarm: some peers on the other (v1) hash's list too, some only there
    for i in range(0, 2000, 7):
        addr = v6(i) if i % 5 == 0 else v4(i)
        store.put(bytes([0]) * 20, addr, b"-XX0001-%012d" % i, i % 3 == 0, 100 + i % 2, True)
    for i in range(3000, 3100):
        store.put(bytes([0]) * 20, v4(i), b"-XX0001-%012d" % i, i % 2 == 0, 101, True)
    return store


def test_round_trip_keeps_every_peer_and_counter() -> None:
    store = filled()
    data = b"".join(dump(store))
    restored = SwarmStore(random.random)
    assert load(data, restored, cutoff=0) == 2100
    assert peers(restored) == peers(store)
    assert restored.peer_count == 2100
    assert restored.swarms[bytes([1]) * 20].completions == 4
    hybrid = bytes([0]) * 20
    assert restored.swarms[hybrid].counts() == store.swarms[hybrid].counts()
    assert len(restored.swarms[hybrid]) == len(store.swarms[hybrid])


def test_a_snapshot_from_before_per_hash_lists_still_loads() -> None:
    store = SwarmStore(random.Random(1).random)
    for i in range(50):
        store.put(b"k" * 20, v4(i), b"-XX0001-%012d" % i, i % 3 == 0, 100)
    data = b"".join(dump(store))
    # the old layout: no count of lists after each swarm's completions
    old = b"WLSWARM1" + data[8:36] + data[37:]
    restored = SwarmStore(random.random)
    assert load(old, restored, cutoff=0) == 50
    assert peers(restored) == peers(store)


def test_stale_peers_are_dropped_and_keep_selects_swarms() -> None:
    store = filled()
    data = b"".join(dump(store))
    restored = SwarmStore(random.random)
    mine = {bytes([k]) * 20 for k in (0, 3)}
    load(data, restored, cutoff=101, keep=lambda key: key in mine)
    expected = {p for p in peers(store) if p[4] >= 101 and p[0] in mine}
    assert peers(restored) == expected and expected
    assert restored.peer_count == len({(key, addr) for key, addr, *_ in expected})


def test_peers_announced_since_start_win_over_the_snapshot() -> None:
    store = filled()
    data = b"".join(dump(store))
    restored = SwarmStore(random.random)
    key = bytes([0]) * 20
    restored.put(key, v6(0), b"-XX0001-new000000000", True, 500)  # peer 0 is a v6 seeder
    restored.put(key, v4(3001), b"-XX0001-new000000001", False, 500, True)
    load(data, restored, cutoff=0)
    assert restored.peer_count == 2100
    assert restored.swarms[key].counts() == store.swarms[key].counts()
    group = restored.swarms[key].groups[3]
    assert group is not None and group.seen[group.index[v6(0)]] == 500


@pytest.mark.parametrize("data", [b"", b"garbage", b"WLSWARM1" + b"\x00" * 30])
def test_broken_files_are_refused(data: bytes) -> None:
    with pytest.raises(SnapshotError):
        load(data, SwarmStore(random.random), cutoff=0)
