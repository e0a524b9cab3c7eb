"""Open connections per address, counted by every worker process.

With several workers the kernel spreads one client's connections over all of them, so a limit
per worker would let a client hold N times as many. Each worker writes only its own row of a
table in shared memory (no two processes ever write the same word), and the count of an address
is the sum of its slot over the rows. A slot is chosen by a keyed hash, so a client cannot aim
its connections at another address's slot; two addresses that share a slot share a count (a
refusal a little early, never a connection over the limit)."""

from __future__ import annotations

import mmap
from hashlib import blake2b

DEFAULT_SLOTS = 1 << 16
_WORD = 4  # unsigned 32-bit counts


def table_size(workers: int, slots: int = DEFAULT_SLOTS) -> int:
    return workers * slots * _WORD


class SharedCounts:
    """``memory``: ``table_size(workers)`` bytes shared by the workers; this one is ``index``.
    Its row is zeroed on creation: a worker that starts again lost its connections with its
    previous process."""

    def __init__(self, memory: mmap.mmap, index: int, workers: int, key: bytes) -> None:
        self.slots = len(memory) // (workers * _WORD)
        self.workers = workers
        self.key = key[:64]
        self._memory = memory
        self._view = memoryview(memory).cast("I")
        self._row = index * self.slots
        self._view[self._row : self._row + self.slots] = memoryview(bytes(self.slots * _WORD)).cast(
            "I"
        )

    def _slot(self, key: str) -> int:
        digest = blake2b(key.encode(), digest_size=8, key=self.key).digest()
        return int.from_bytes(digest, "little") % self.slots

    def count(self, key: str) -> int:
        slot = self._slot(key)
        view = self._view
        return sum(view[w * self.slots + slot] for w in range(self.workers))

    def add(self, key: str, delta: int) -> None:
        at = self._row + self._slot(key)
        self._view[at] = max(0, self._view[at] + delta)
