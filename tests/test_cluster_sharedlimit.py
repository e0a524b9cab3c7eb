import mmap

from weightless.cluster.sharedlimit import SharedRateLimiter, table_size


def shared(slots: int = 1024) -> mmap.mmap:
    return mmap.mmap(-1, table_size(slots))


def test_two_workers_share_one_bucket_per_ip() -> None:
    memory = shared()
    a = SharedRateLimiter(memory, rate=5, burst=10)
    b = SharedRateLimiter(memory, rate=5, burst=10)
    answers = [(a if i % 2 else b).allow("10.0.0.1", 100.0) for i in range(12)]
    assert answers == [True] * 10 + [False] * 2  # not 20: the burst is for the whole tracker
    assert a.retry_after("10.0.0.1") == 1
    assert b.allow("10.0.0.1", 100.2)
    assert a.allow("10.0.0.2", 100.2)


def test_disabled_and_bounded() -> None:
    memory = shared(slots=16)
    limiter = SharedRateLimiter(memory, rate=1, burst=1)
    for i in range(1000):  # many more IPs than slots: memory does not grow
        limiter.allow(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(memory) == table_size(16)
    assert all(SharedRateLimiter(memory, 0, 0).allow("x", 0.0) for _ in range(100))
