"""Token buckets shared by every worker process, in a fixed table in shared memory.

With several workers a client's requests land on any of them, so per-process buckets would hand
it N times the rate. Here every worker reads and writes the same slot for an IP. There are no
locks: two workers updating one IP's slot in the same microsecond can each take the same token,
so the limit is exact up to such races (a request or two per burst at most). Memory is fixed;
an IP whose slot is taken by another evicts it (one bucket, never all)."""

from __future__ import annotations

import mmap
import struct
from hashlib import blake2b

from weightless.netaddr import DEFAULT_IPV6_PREFIX, address_key
from weightless.tracker.ratelimit import refill, retry_seconds

_SLOT = struct.Struct("=Qdd")  # ip tag, tokens, last refill time
DEFAULT_SLOTS = 1 << 16


def table_size(slots: int = DEFAULT_SLOTS) -> int:
    return slots * _SLOT.size


class SharedRateLimiter:
    def __init__(
        self,
        memory: mmap.mmap,
        rate: float,
        burst: float,
        ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
    ) -> None:
        self.memory = memory
        self.ipv6_prefix = ipv6_prefix
        self.rate = rate
        self.burst = burst
        self.slots = len(memory) // _SLOT.size

    def _slot(self, ip: str) -> tuple[int, int]:
        """The slot of ``ip``'s bucket (an IPv6 address: its /ipv6_prefix network's)."""
        ip = address_key(ip, self.ipv6_prefix)
        digest = blake2b(ip.encode(), digest_size=8).digest()
        tag = int.from_bytes(digest, "little") | 1  # never 0: 0 marks an empty slot
        return (tag % self.slots) * _SLOT.size, tag

    def allow(self, ip: str, now: float) -> bool:
        if self.rate <= 0:
            return True
        offset, tag = self._slot(ip)
        seen, tokens, last = _SLOT.unpack_from(self.memory, offset)
        if seen != tag:
            tokens, last = self.burst, now
        tokens = refill(tokens, last, now, self.rate, self.burst)
        allowed = tokens >= 1
        _SLOT.pack_into(self.memory, offset, tag, tokens - 1 if allowed else tokens, now)
        return allowed

    def retry_after(self, ip: str) -> int:
        offset, tag = self._slot(ip)
        seen, tokens, _ = _SLOT.unpack_from(self.memory, offset)
        if seen != tag or self.rate <= 0:
            return 0
        return retry_seconds(tokens, self.rate)
