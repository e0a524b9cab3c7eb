"""Open connections per address counted by every worker (weightless.cluster.sharedcount),
on an anonymous shared mapping: each worker writes its own row, the count is the sum."""

from __future__ import annotations

import mmap

import pytest

from weightless.cluster.sharedcount import DEFAULT_SLOTS, SharedCounts, table_size

KEY = b"k" * 32


def table(workers: int, slots: int = 64) -> mmap.mmap:
    return mmap.mmap(-1, table_size(workers, slots))


def test_table_size() -> None:
    assert table_size(3) == 3 * DEFAULT_SLOTS * 4
    assert table_size(2, 10) == 80


def test_the_count_is_the_sum_over_the_workers() -> None:
    memory = table(3)
    workers = [SharedCounts(memory, i, 3, KEY) for i in range(3)]
    assert workers[0].slots == 64
    workers[0].add("10.0.0.1", 1)
    workers[1].add("10.0.0.1", 2)
    workers[2].add("10.0.0.1", 1)
    assert [w.count("10.0.0.1") for w in workers] == [4, 4, 4]
    workers[1].add("10.0.0.1", -2)
    assert workers[2].count("10.0.0.1") == 2


def test_never_below_zero() -> None:
    counts = SharedCounts(table(1), 0, 1, KEY)
    counts.add("a", 1)
    counts.add("a", -5)
    assert counts.count("a") == 0
    counts.add("a", 1)
    assert counts.count("a") == 1


def test_a_worker_that_starts_again_starts_from_zero_the_others_keep_theirs() -> None:
    memory = table(2)
    first, other = SharedCounts(memory, 0, 2, KEY), SharedCounts(memory, 1, 2, KEY)
    first.add("a", 3)
    other.add("a", 2)
    again = SharedCounts(memory, 0, 2, KEY)  # worker 0's new process
    assert again.count("a") == 2 and other.count("a") == 2


def test_each_worker_writes_only_its_own_row() -> None:
    memory = table(2, 8)
    SharedCounts(memory, 0, 2, KEY).add("a", 7)
    words = memoryview(memory).cast("I")
    assert sum(words[:8]) == 7 and sum(words[8:]) == 0
    SharedCounts(memory, 1, 2, KEY).add("b", 1)
    assert sum(words[:8]) == 7 and sum(words[8:]) == 1


def slots_of(key: bytes, addresses: list[str]) -> list[int]:
    counts = SharedCounts(table(1, 1024), 0, 1, key)
    return [counts._slot(a) for a in addresses]


def test_slots_depend_on_the_secret_key() -> None:
    addresses = [f"10.0.{i // 256}.{i % 256}" for i in range(200)]
    mine = slots_of(KEY, addresses)
    assert mine == slots_of(KEY, addresses)  # every worker has the same key: same slots
    assert sum(a != b for a, b in zip(mine, slots_of(b"other", addresses), strict=True)) > 190
    assert len(set(mine)) > 150  # spread over the table


def test_addresses_sharing_a_slot_share_a_count() -> None:
    counts = SharedCounts(table(1, 1), 0, 1, KEY)  # one slot: everything collides
    counts.add("a", 1)
    counts.add("b", 1)
    assert counts.count("a") == counts.count("b") == 2


@pytest.mark.parametrize("key", [b"", b"x" * 100])
def test_any_key_length(key: bytes) -> None:
    counts = SharedCounts(table(1), 0, 1, key)
    counts.add("a", 1)
    assert counts.count("a") == 1
