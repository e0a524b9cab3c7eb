"""Token buckets per client IP, in bounded memory.

Buckets live in an LRU dict: when it is full the least recently seen IP is evicted, one at a
time (never a wipe of every bucket, which would hand every abuser a fresh burst)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

DEFAULT_MAX_BUCKETS = 100_000


class Limiter(Protocol):
    """A rate limit per client IP (this process's, or shared by several workers)."""

    def allow(self, ip: str, now: float) -> bool: ...

    def retry_after(self, ip: str) -> int: ...


class RateLimiter:
    def __init__(self, rate: float, burst: float, max_buckets: int = DEFAULT_MAX_BUCKETS) -> None:
        self.rate = rate
        self.burst = burst
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # ip -> [tokens, time]

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self, ip: str, now: float) -> bool:
        """Take one token for ``ip``; False when its bucket is empty."""
        if self.rate <= 0:
            return True
        buckets = self._buckets
        bucket = buckets.get(ip)
        if bucket is None:
            if len(buckets) >= self.max_buckets:
                buckets.popitem(last=False)
            buckets[ip] = [self.burst - 1, now]
            return True
        buckets.move_to_end(ip)
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1
        return True

    def retry_after(self, ip: str) -> int:
        """Whole seconds until ``ip`` has a token again (for a Retry-After header)."""
        bucket = self._buckets.get(ip)
        if bucket is None or self.rate <= 0:
            return 0
        return max(1, int((1 - bucket[0]) / self.rate + 0.999))

    def __len__(self) -> int:
        return len(self._buckets)
