import mmap
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from weightless.cluster.sharedlimit import SharedRateLimiter, table_size


@pytest.fixture
def table(tmp_path: Path) -> Iterator[Path]:
    """The file the supervisor makes and every worker maps (as ``tap`` maps it)."""
    path = tmp_path / "ratelimit"
    path.write_bytes(bytes(table_size(1024)))
    yield path


def worker(stack: ExitStack, path: Path, rate: float = 5, burst: float = 10) -> SharedRateLimiter:
    """One worker's limiter: its own open file and its own mapping of the shared table."""
    f = stack.enter_context(path.open("r+b"))
    return SharedRateLimiter(stack.enter_context(mmap.mmap(f.fileno(), 0)), rate, burst)


def test_two_workers_share_one_bucket_per_ip(table: Path) -> None:
    with ExitStack() as stack:
        a, b = worker(stack, table), worker(stack, table)
        answers = [(a if i % 2 else b).allow("10.0.0.1", 100.0) for i in range(12)]
        assert answers == [True] * 10 + [False] * 2  # not 20: the burst is for the whole tracker
        assert a.retry_after("10.0.0.1") == 1 and b.retry_after("10.0.0.1") == 1
        assert b.allow("10.0.0.1", 100.2)  # refilled at 5/s, seen by both
        assert not a.allow("10.0.0.1", 100.2)
        assert a.allow("10.0.0.2", 100.2)  # another IP has its own bucket


def test_many_ips_evict_one_bucket_never_all(table: Path) -> None:
    """Memory is fixed; an abuser who keeps coming back stays limited however many other
    addresses come and go, except the one that takes its slot."""
    with ExitStack() as stack:
        a, b = worker(stack, table, rate=1, burst=2), worker(stack, table, rate=1, burst=2)
        abuser = "203.0.113.66"
        assert a.allow(abuser, 0.0) and b.allow(abuser, 0.0)
        assert not a.allow(abuser, 0.0)
        slot = a._slot(abuser)[0]
        others = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(20_000)]
        colliding = [ip for ip in others if a._slot(ip)[0] == slot]
        for ip in others:
            if ip not in colliding:
                assert b.allow(ip, 0.5)  # each newcomer gets its burst
        assert not a.allow(abuser, 0.5) and not b.allow(abuser, 0.5)
        assert colliding  # 20,000 addresses over 1,024 slots
        b.allow(colliding[0], 0.5)  # takes the slot: only this one bucket is forgotten
        assert a.allow(abuser, 0.5)


def test_disabled() -> None:
    limiter = SharedRateLimiter(mmap.mmap(-1, table_size(16)), 0, 0)
    assert all(limiter.allow("10.0.0.1", 0.0) for _ in range(1000))
    assert limiter.retry_after("10.0.0.1") == 0
