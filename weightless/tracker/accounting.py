"""Per-user upload/download accounting from successive announces, and the queue of writes
(completions, user traffic) that is flushed to the store in batches.

Clients report running totals since they started. The tracker turns them into deltas per peer;
a total lower than the last one means the client restarted, so it counts from zero again.
A peer first seen mid-session only sets a baseline: after a tracker restart its totals were
already counted once."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from weightless.wire.numbers import INT64_MAX


class PendingWrites:
    """Side effects waiting for the next flush. Nothing leaves until the store confirms it.

    Every total saturates at INT64_MAX (2^63-1), the largest value a database column holds."""

    def __init__(self) -> None:
        self.completions: dict[str, int] = {}  # registry info_hash -> completed events
        self.traffic: dict[str, list[int]] = {}  # user id -> [uploaded, downloaded]

    def __bool__(self) -> bool:
        return bool(self.completions or self.traffic)

    def __len__(self) -> int:
        """Rows to write: one per entry with completions, one per user with traffic."""
        return len(self.completions) + len(self.traffic)

    def complete(self, info_hash: str, n: int = 1) -> None:
        self.completions[info_hash] = min(self.completions.get(info_hash, 0) + n, INT64_MAX)

    def transfer(self, user_id: str, uploaded: int, downloaded: int) -> None:
        totals = self.traffic.get(user_id)
        if totals is None:
            self.traffic[user_id] = [min(uploaded, INT64_MAX), min(downloaded, INT64_MAX)]
        else:
            totals[0] = min(totals[0] + uploaded, INT64_MAX)
            totals[1] = min(totals[1] + downloaded, INT64_MAX)

    def halves(self) -> tuple[PendingWrites, PendingWrites]:
        """This batch cut in two of about the same number of rows (to find a refused one)."""
        rows: list[tuple[str, Any]] = [("c", item) for item in self.completions.items()]
        rows += [("t", item) for item in self.traffic.items()]
        parts = PendingWrites(), PendingWrites()
        middle = len(rows) // 2
        for i, (kind, (key, value)) in enumerate(rows):
            part = parts[i >= middle]
            if kind == "c":
                part.completions[key] = value
            else:
                part.traffic[key] = value
        return parts

    def take(self) -> PendingWrites:
        """Hand over everything queued so far, leaving this queue empty."""
        taken = PendingWrites()
        taken.completions, self.completions = self.completions, {}
        taken.traffic, self.traffic = self.traffic, {}
        return taken

    def restore(self, failed: PendingWrites) -> None:
        """Put back a batch the store did not take, merged with what came in meanwhile."""
        for info_hash, n in failed.completions.items():
            self.complete(info_hash, n)
        for user_id, (up, down) in failed.traffic.items():
            self.transfer(user_id, up, down)


class Accounting:
    """The last totals each (user, swarm, peer) reported, so that each announce adds a delta."""

    def __init__(self, pending: PendingWrites, max_age: float) -> None:
        self.pending = pending
        self.max_age = max_age
        self._last: OrderedDict[tuple[str, bytes, bytes], tuple[int, int, float]] = OrderedDict()

    def announce(
        self,
        user_id: str,
        swarm: bytes,
        addr: bytes,
        uploaded: int,
        downloaded: int,
        started: bool,
        stopped: bool,
        now: float,
    ) -> None:
        key = (user_id, swarm, addr)
        last = self._last.pop(key, None)
        if last is None:
            up, down = (uploaded, downloaded) if started else (0, 0)
        else:
            # a total that went down means the client restarted and counts from zero again
            up = uploaded - last[0] if uploaded >= last[0] else uploaded
            down = downloaded - last[1] if downloaded >= last[1] else downloaded
        if up or down:
            self.pending.transfer(user_id, up, down)
        if not stopped:
            self._last[key] = (uploaded, downloaded, now)

    def expire(self, now: float, budget: int) -> None:
        """Forget peers not heard from for max_age (oldest first, at most ``budget``)."""
        last = self._last
        cutoff = now - self.max_age
        while last and budget > 0:
            key, (_, _, seen) = next(iter(last.items()))
            if seen >= cutoff:
                break
            del last[key]
            budget -= 1

    def baselines(self) -> list[list[Any]]:
        """Every peer's last totals, for a restart to continue from (JSON-ready)."""
        return [
            [user, swarm.hex(), addr.hex(), up, down, seen]
            for (user, swarm, addr), (up, down, seen) in self._last.items()
        ]

    def restore_baselines(self, peers: list[list[Any]]) -> None:
        for user, swarm, addr, up, down, seen in peers:
            key = (str(user), bytes.fromhex(swarm), bytes.fromhex(addr))
            if key not in self._last:  # an announce since the start is newer
                self._last[key] = (int(up), int(down), float(seen))

    def __len__(self) -> int:
        return len(self._last)
