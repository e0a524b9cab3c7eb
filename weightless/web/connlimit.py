"""How many connections one address, and everyone, may hold open at once.

``ConnectionLimits.admit`` is asked when a connection arrives and ``release`` when it ends. One
address is an IPv4 address or an IPv6 /64 (``weightless.netaddr.address_key``). The counts per
address are this process's (``LocalCounts``) or every worker's (``weightless.cluster.sharedcount``).
"""

from __future__ import annotations

import resource
from typing import Protocol

from weightless.netaddr import DEFAULT_IPV6_PREFIX, address_key

DEFAULT_PER_ADDRESS = 128
FD_RESERVE = 64  # descriptors kept for the database, the UDP socket, files, the worker mesh


class Counts(Protocol):
    def count(self, key: str) -> int: ...

    def add(self, key: str, delta: int) -> None: ...


class LocalCounts:
    """Open connections per address key in this process."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}

    def count(self, key: str) -> int:
        return self._open.get(key, 0)

    def add(self, key: str, delta: int) -> None:
        n = self._open.get(key, 0) + delta
        if n > 0:
            self._open[key] = n
        else:
            self._open.pop(key, None)

    def __len__(self) -> int:
        return len(self._open)


class ConnectionLimits:
    """``per_address`` open connections per address key (0 = no limit) and ``total`` in all
    (0 = no limit). ``exempt`` addresses (trusted proxies, which carry many clients on their
    connections) count only towards the total."""

    def __init__(
        self,
        per_address: int = DEFAULT_PER_ADDRESS,
        total: int = 0,
        ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
        counts: Counts | None = None,
    ) -> None:
        self.per_address = per_address
        self.total = total
        self.ipv6_prefix = ipv6_prefix
        self.counts: Counts = counts if counts is not None else LocalCounts()
        self.open = 0  # connections admitted and not yet released
        self.refused = 0

    def admit_any(self) -> bool:
        """Whether one more connection fits in the total; counts it when it does."""
        if self.total and self.open >= self.total:
            self.refused += 1
            return False
        self.open += 1
        return True

    def admit(self, ip: str) -> str | None:
        """The address key ``ip`` is counted under, or None when it already holds
        ``per_address`` connections (nothing is counted then). Call after ``admit_any``."""
        key = address_key(ip, self.ipv6_prefix)
        if self.per_address and self.counts.count(key) >= self.per_address:
            self.refused += 1
            return None
        self.counts.add(key, 1)
        return key

    def release(self, key: str | None) -> None:
        """A connection counted by ``admit_any`` (and, with its key, ``admit``) ended."""
        self.open -= 1
        if key is not None:
            self.counts.add(key, -1)


def raise_open_file_limit() -> int:
    """Raise this process's open-file limit to its hard limit; the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= hard:
        return soft if soft != resource.RLIM_INFINITY else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return soft
    return hard


def default_max_connections(open_files: int) -> int:
    """Connections one process may hold with ``open_files`` descriptors: all but a reserve."""
    return max(open_files - FD_RESERVE, open_files // 2, 1)
