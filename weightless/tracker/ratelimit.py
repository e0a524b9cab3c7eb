"""Token buckets per client address, in bounded memory.

Buckets live in an LRU dict: when it is full the least recently seen address is evicted, one at
a time (never a wipe of every bucket, which would hand every abuser a fresh burst). An IPv6
client is keyed by its /64 (``ipv6_prefix``): one host holds a whole /64, and keying by /128
would give it 2^64 buckets and let it churn everyone else's out."""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from weightless.netaddr import DEFAULT_IPV6_PREFIX, address_key

DEFAULT_MAX_BUCKETS = 100_000


class Limiter(Protocol):
    """A rate limit per client IP (this process's, or shared by several workers)."""

    def allow(self, ip: str, now: float) -> bool: ...

    def retry_after(self, ip: str) -> int: ...


def refill(tokens: float, last: float, now: float, rate: float, burst: float) -> float:
    """The tokens of a bucket at ``now`` that held ``tokens`` at ``last``."""
    return min(burst, tokens + (now - last) * rate)


def retry_seconds(tokens: float, rate: float) -> int:
    """Whole seconds until a bucket holding ``tokens`` has one again (for Retry-After)."""
    return max(1, int((1 - tokens) / rate + 0.999))


class RateLimiter:
    def __init__(
        self,
        rate: float,
        burst: float,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
        ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_buckets = max_buckets
        self.ipv6_prefix = ipv6_prefix
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # ip -> [tokens, time]

    def allow(self, ip: str, now: float) -> bool:
        """Take one token for ``ip``; False when its bucket is empty."""
        if self.rate <= 0:
            return True
        if ":" in ip:
            ip = address_key(ip, self.ipv6_prefix)
        buckets = self._buckets
        bucket = buckets.get(ip)
        if bucket is None:
            if len(buckets) >= self.max_buckets:
                buckets.popitem(last=False)
            buckets[ip] = [self.burst - 1, now]
            return True
        buckets.move_to_end(ip)
        tokens = refill(bucket[0], bucket[1], now, self.rate, self.burst)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1
        return True

    def retry_after(self, ip: str) -> int:
        """Whole seconds until ``ip`` has a token again (for a Retry-After header)."""
        bucket = self._buckets.get(address_key(ip, self.ipv6_prefix))
        if bucket is None or self.rate <= 0:
            return 0
        return retry_seconds(bucket[0], self.rate)

    def __len__(self) -> int:
        return len(self._buckets)
