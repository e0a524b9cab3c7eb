from weightless.tracker.ratelimit import RateLimiter


def test_burst_then_refill_at_rate() -> None:
    limiter = RateLimiter(rate=5, burst=10)
    assert all(limiter.allow("1.2.3.4", 100.0) for _ in range(10))
    assert not limiter.allow("1.2.3.4", 100.0)
    assert limiter.retry_after("1.2.3.4") == 1
    assert limiter.allow("1.2.3.4", 100.2)  # 0.2 s at 5/s is one token
    assert not limiter.allow("1.2.3.4", 100.2)
    assert limiter.allow("5.6.7.8", 100.2)  # other IPs have their own bucket


def test_refused_requests_do_not_earn_tokens() -> None:
    limiter = RateLimiter(rate=1, burst=1)
    assert limiter.allow("a", 0.0)
    assert not limiter.allow("a", 0.5)
    assert limiter.allow("a", 1.0)


def test_zero_rate_disables() -> None:
    limiter = RateLimiter(rate=0, burst=10)
    assert all(limiter.allow("a", 0.0) for _ in range(1000))
    assert len(limiter) == 0


def test_memory_is_bounded_and_eviction_is_one_by_one() -> None:
    limiter = RateLimiter(rate=1, burst=2, max_buckets=100)
    assert limiter.allow("busy", 0.0) and limiter.allow("busy", 0.0)
    for i in range(99):
        limiter.allow(f"10.0.0.{i}", 0.0)
    assert not limiter.allow("busy", 0.0)  # recently used: its empty bucket is kept
    limiter.allow("one-more", 0.0)
    assert len(limiter) == 100
    assert not limiter.allow("busy", 0.0)  # the least recently used IP went, not everybody


def test_an_ipv6_64_is_one_bucket_in_both_limiters() -> None:
    import mmap

    from weightless.cluster.sharedlimit import SharedRateLimiter, table_size

    for limiter in (
        RateLimiter(1, 2),
        SharedRateLimiter(mmap.mmap(-1, table_size(1024)), 1, 2),
    ):
        hosts = [f"2001:db8:1:2::{i:x}" for i in range(1, 5)]
        assert [limiter.allow(h, 0.0) for h in hosts] == [True, True, False, False]
        assert limiter.allow("2001:db8:1:3::1", 0.0)  # the next /64
        assert limiter.retry_after("2001:db8:1:2::ffff") >= 1


def test_ipv6_prefix_is_configurable() -> None:
    limiter = RateLimiter(1, 1, ipv6_prefix=48)
    assert limiter.allow("2001:db8:1:2::1", 0.0)
    assert not limiter.allow("2001:db8:1:ffff::1", 0.0)  # same /48
    assert limiter.allow("2001:db8:2::1", 0.0)
