import random
from collections import Counter

from weightless.tracker.swarm import (
    NEW,
    SEEDERS4,
    WAS_LEECHER,
    WAS_SEEDER,
    PeerGroup,
    SwarmStore,
)

KEY = b"k" * 20


def v4(i: int) -> bytes:
    return bytes([10, 0, i >> 8 & 0xFF, i & 0xFF]) + (6881 + (i >> 16)).to_bytes(2, "big")


def v6(i: int) -> bytes:
    return b"\x20\x01" + bytes(12) + i.to_bytes(2, "big") + b"\x1a\xe1"


def pid(i: int) -> bytes:
    return b"-XX0001-%012d" % i


def check_group(group: PeerGroup) -> None:
    """The index, the packed addresses and the ages agree."""
    assert len(group.addrs) == len(group) * group.width
    assert len(group.ids) == len(group) * 20
    assert len(group.index) == len(group) == len(group.keys)
    for addr, pos in group.index.items():
        assert group.addrs[pos * group.width : (pos + 1) * group.width] == addr
        assert group.keys[pos] is addr


def test_put_counts_and_transitions() -> None:
    store = SwarmStore(random.Random(1).random)
    _, _, _, before = store.put(KEY, v4(1), pid(1), False, 100)
    assert before == NEW
    _, _, _, before = store.put(KEY, v4(1), pid(1), False, 101)
    assert before == WAS_LEECHER
    swarm, _, _, before = store.put(KEY, v4(1), pid(1), True, 102)
    assert before == WAS_LEECHER  # it finished: moved from leechers to seeders
    assert swarm.counts() == (1, 0)
    _, _, _, before = store.put(KEY, v4(1), pid(1), True, 103)
    assert before == WAS_SEEDER
    assert store.peer_count == 1


def test_peer_is_keyed_by_address_and_port_not_peer_id() -> None:
    store = SwarmStore(random.Random(1).random)
    store.put(KEY, v4(1), pid(1), False, 100)
    swarm, group, pos, _ = store.put(KEY, v4(1), pid(2), False, 101)  # client restarted
    assert swarm.counts() == (0, 1)
    assert group.ids[pos * 20 : pos * 20 + 20] == pid(2)


def test_remove_and_empty_swarm_is_dropped() -> None:
    store = SwarmStore(random.Random(1).random)
    for i in range(5):
        store.put(KEY, v4(i), pid(i), i % 2 == 0, 100)
    for i in range(5):
        store.remove(KEY, v4(i))
    assert store.peer_count == 0
    assert KEY not in store.swarms


def test_group_stays_consistent_under_random_churn() -> None:
    rng = random.Random(7)
    store = SwarmStore(rng.random)
    live: dict[bytes, bool] = {}
    for step in range(3000):
        i = rng.randrange(200)
        addr = v6(i) if i % 3 == 0 else v4(i)
        if rng.random() < 0.3:
            store.remove(KEY, addr)
            live.pop(addr, None)
        else:
            seeding = rng.random() < 0.3
            store.put(KEY, addr, pid(i), seeding, step)
            live[addr] = seeding
    swarm = store.swarms[KEY]
    for group in swarm.groups:
        if group is not None:
            check_group(group)
    assert swarm.counts() == (sum(live.values()), len(live) - sum(live.values()))
    assert store.peer_count == len(live)


def test_a_reply_is_a_random_sample_not_insertion_order() -> None:
    rng = random.Random(3)
    store = SwarmStore(rng.random)
    for i in range(100):
        store.put(KEY, v4(i), pid(i), True, 100)
    group = store.swarms[KEY].groups[SEEDERS4]
    assert group is not None
    seen: Counter[bytes] = Counter()
    for _ in range(2000):
        sample = group.packed(10, rng.random())
        assert len(sample) == 60
        picks = [sample[i : i + 6] for i in range(0, 60, 6)]
        assert len(set(picks)) == 10
        seen.update(picks)
    # every peer shows up, about equally often (expected 200 each)
    assert len(seen) == 100
    assert min(seen.values()) > 120 and max(seen.values()) < 280
    # the order in the group is not the order peers arrived in
    assert group.addrs[:60] != b"".join(v4(i) for i in range(10))


def test_pick_leaves_out_the_announcer_and_gives_seeders_leechers() -> None:
    rng = random.Random(5)
    store = SwarmStore(rng.random)
    for i in range(3):
        store.put(KEY, v4(i), pid(i), True, 100)
    for i in range(3, 6):
        store.put(KEY, v4(i), pid(i), False, 100)
    swarm, _, pos, _ = store.put(KEY, v4(3), pid(3), False, 101)
    for _ in range(50):
        plan, total = swarm.pick(False, False, 50, pos)
        peers = b"".join(g.packed(n, rng.random(), skip) for g, n, skip in plan)
        got = {peers[i : i + 6] for i in range(0, len(peers), 6)}
        assert total == 5 and len(got) == 5
        assert v4(3) not in got
    # a seeder gets leechers first, then the other seeders, never itself
    swarm, _, pos, _ = store.put(KEY, v4(0), pid(0), True, 101)
    plan, total = swarm.pick(False, True, 50, pos)
    peers = b"".join(g.packed(n, rng.random(), skip) for g, n, skip in plan)
    got = [peers[i : i + 6] for i in range(0, len(peers), 6)]
    assert set(got[:3]) == {v4(3), v4(4), v4(5)} and set(got[3:]) == {v4(1), v4(2)}
    plan, total = swarm.pick(False, True, 2, pos)
    assert total == 2 and [n for _, n, _ in plan] == [2] and plan[0][0] is swarm.groups[0]


def test_pick_honours_numwant_and_own_family_first() -> None:
    rng = random.Random(5)
    store = SwarmStore(rng.random)
    for i in range(30):
        store.put(KEY, v4(i), pid(i), True, 100)
        store.put(KEY, v6(i), pid(i), True, 100)
    swarm, _, pos, _ = store.put(KEY, v6(99), pid(99), False, 100)
    plan, total = swarm.pick(True, False, 40, pos)
    assert total == 40
    assert [(g.width, n) for g, n, _ in plan] == [(18, 30), (6, 10)]
    plan, total = swarm.pick(True, False, 40, pos, both_families=False)
    assert [(g.width, n) for g, n, _ in plan] == [(18, 30)] and total == 30


def test_skip_inside_a_window_never_shortens_it() -> None:
    group = PeerGroup(6)
    for i in range(10):
        group.add(v4(i), pid(i), 1, len(group))
    for start in [i / 10 for i in range(10)]:
        for skip in range(10):
            sample = group.packed(4, start, skip)
            picks = {sample[i : i + 6] for i in range(0, len(sample), 6)}
            assert len(picks) == 4 and v4(skip) not in picks


def test_listed_matches_packed() -> None:
    group = PeerGroup(6)
    group.add(v4(1), pid(1), 1, 0)
    group.add(v4(2), pid(2), 1, 0)
    assert list(group.listed(5, 0.0)) == [
        ("10.0.0.2", 6881, pid(2)),
        ("10.0.0.1", 6881, pid(1)),
    ]


def test_expiry_in_slices_drops_only_stale_peers() -> None:
    rng = random.Random(11)
    store = SwarmStore(rng.random)
    keys = [bytes([k]) * 20 for k in range(20)]
    fresh = set()
    for i in range(5000):
        key = keys[i % 20]
        seen = 1000 if i % 4 else 5000  # one in four is fresh
        store.put(key, v4(i), pid(i), i % 7 == 0, seen)
        if seen == 5000:
            fresh.add((key, v4(i)))
    # one large swarm so that a single group needs several slices
    for i in range(5000, 9000):
        store.put(keys[0], v4(i), pid(i), False, 1000)
    slices = 1
    while not store.expire(cutoff=2000, budget=500):
        slices += 1
    assert slices > 10
    assert store.peer_count == len(fresh) == 1250
    remaining = set()
    for key, swarm in store.swarms.items():
        for group in swarm.groups:
            if group is not None:
                check_group(group)
                remaining.update((key, addr) for addr in group.index)
    assert remaining == fresh


def test_expiry_survives_changes_between_slices() -> None:
    rng = random.Random(2)
    store = SwarmStore(rng.random)
    for i in range(3000):
        store.put(KEY, v4(i), pid(i), False, 10)
    assert not store.expire(cutoff=20, budget=1000)
    for i in range(3000, 3500):  # new peers arrive mid-pass
        store.put(KEY, v4(i), pid(i), False, 30)
    while not store.expire(cutoff=20, budget=1000):
        pass
    store.expire(cutoff=20, budget=10**6)  # a later pass finds what moved
    assert store.peer_count == 500
    group = store.swarms[KEY].groups[0]
    assert group is not None
    check_group(group)


def hybrid_model_check(store: SwarmStore, live: list[dict[bytes, bool]]) -> None:
    """The store agrees with a model of the two lists ({addr: seeding} per hash)."""
    swarm = store.swarms.get(KEY)
    lists = [swarm, swarm.other if swarm is not None else None]
    for peers, model in zip(lists, live, strict=True):
        found: dict[bytes, bool] = {}
        if peers is not None:
            for slot, group in enumerate(peers.groups):
                if group is not None:
                    check_group(group)
                    found.update((addr, slot & 1 == 1) for addr in group.index)
        assert found == model
    merged = {**live[0], **live[1]}
    for addr in merged:  # a peer in both lists is in the same state in both
        if addr in live[0] and addr in live[1]:
            assert live[0][addr] == live[1][addr]
    seeders = sum(merged.values())
    assert (swarm.counts() if swarm is not None else (0, 0)) == (seeders, len(merged) - seeders)
    assert (len(swarm) if swarm is not None else 0) == len(merged)
    assert store.peer_count == len(merged)


def test_hybrid_lists_stay_consistent_under_random_churn() -> None:
    rng = random.Random(13)
    store = SwarmStore(rng.random)
    live: list[dict[bytes, bool]] = [{}, {}]
    for step in range(4000):
        i = rng.randrange(60)
        addr = v6(i) if i % 4 == 0 else v4(i)
        other = rng.random() < 0.5
        here, there = live[other], live[not other]
        roll = rng.random()
        if roll < 0.25:
            finished = rng.random() < 0.5
            _, before = store.remove(KEY, addr, other, finished)
            expected = NEW
            if addr in here:
                expected = WAS_SEEDER if here.pop(addr) else WAS_LEECHER
            elif addr in there:
                expected = WAS_SEEDER if there[addr] else WAS_LEECHER
            assert before == expected
            if finished and addr in there:
                there[addr] = True
        else:
            seeding = rng.random() < 0.4
            _, _, _, before = store.put(KEY, addr, pid(i), seeding, step, other)
            was = here.get(addr, there.get(addr))
            assert before == (NEW if was is None else WAS_SEEDER if was else WAS_LEECHER)
            here[addr] = seeding
            if addr in there:
                there[addr] = seeding
        hybrid_model_check(store, live)


def test_hybrid_expiry_counts_each_peer_once() -> None:
    store = SwarmStore(random.Random(4).random)
    live: list[dict[bytes, bool]] = [{}, {}]
    for i in range(3000):
        seeding, fresh = i % 5 == 0, i % 3 == 0
        store.put(KEY, v4(i), pid(i), seeding, 50 if fresh else 10)
        if i % 2:  # on the v1 list too, where it is stale
            store.put(KEY, v4(i), pid(i), seeding, 10, other=True)
        if fresh:
            live[0][v4(i)] = seeding
    assert store.peer_count == 3000
    slices = 1
    while not store.expire(cutoff=20, budget=700):
        slices += 1
    assert slices > 4
    hybrid_model_check(store, live)
    assert store.swarms[KEY].other is None  # an emptied list is freed


def test_v1_list_alone_keeps_the_swarm() -> None:
    store = SwarmStore(random.Random(1).random)
    store.put(KEY, v4(1), pid(1), False, 1, other=True)
    store.put(KEY, v4(2), pid(2), True, 1)
    store.remove(KEY, v4(2))
    swarm = store.swarms[KEY]
    assert swarm.counts() == (0, 1) and len(swarm) == 1 and store.peer_count == 1
    store.remove(KEY, v4(1), other=True)
    assert KEY not in store.swarms and store.peer_count == 0
