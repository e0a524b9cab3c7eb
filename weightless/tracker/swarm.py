"""Swarms: the peers of each torrent, pre-packed so that picking peers for a reply is a slice.

Pure state: the time and the random source are passed in; nothing here does I/O.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from socket import AF_INET, AF_INET6, inet_ntop
from struct import Struct

ID_LEN = 20
WIDTH_V4 = 6  # 4-byte address + 2-byte port, as in a compact reply (BEP 23)
WIDTH_V6 = 18  # BEP 7

# group slots of a swarm: family * 2 + seeding
LEECHERS4, SEEDERS4, LEECHERS6, SEEDERS6 = 0, 1, 2, 3

NEW, WAS_LEECHER, WAS_SEEDER = 0, 1, 2

# Writing a few bytes into a bytearray in place: a precompiled Struct's pack_into takes about
# half the time of a slice assignment, and adds and removals do it on every announce.
_PUT_ADDR = {WIDTH_V4: Struct("6s").pack_into, WIDTH_V6: Struct("18s").pack_into}
_put_id = Struct(f"{ID_LEN}s").pack_into


class PeerGroup:
    """Peers of one address family and one state (seeding or leeching) of one swarm.

    The order is kept a uniformly random permutation: a new peer takes a random position and the
    peer there moves to the end (inside-out Fisher-Yates); a removal moves the last peer into
    the gap. So any run of consecutive peers is a random sample and a reply is one slice.
    """

    __slots__ = ("addrs", "ids", "index", "keys", "put_addr", "seen", "width")

    def __init__(self, width: int) -> None:
        self.width = width
        self.put_addr = _PUT_ADDR[width]
        self.addrs = bytearray()  # packed address + port, `width` bytes each
        self.ids = bytearray()  # peer ids, 20 bytes each
        self.seen = array("I")  # last announce, whole seconds
        self.index: dict[bytes, int] = {}  # packed address -> position
        # the index's own key objects, by position: moving a peer needs its key, and slicing
        # it out of `addrs` again would cost two allocations on every add and removal
        self.keys: list[bytes] = []

    def __len__(self) -> int:
        return len(self.seen)

    def add(self, addr: bytes, peer_id: bytes, now: int, pos: int) -> None:
        """Insert a peer that is not here at position ``pos`` (0..len, chosen at random)."""
        addrs, ids, seen, keys = self.addrs, self.ids, self.seen, self.keys
        n = len(seen)
        if pos < n:
            w = self.width
            a, b = pos * w, pos * ID_LEN
            moved = keys[pos]
            keys.append(moved)
            keys[pos] = addr
            addrs += moved
            self.put_addr(addrs, a, addr)
            ids += ids[b : b + ID_LEN]
            _put_id(ids, b, peer_id)
            seen.append(seen[pos])
            seen[pos] = now
            self.index[moved] = n
        else:
            keys.append(addr)
            addrs += addr
            ids += peer_id
            seen.append(now)
        self.index[addr] = pos

    def touch(self, pos: int, peer_id: bytes, now: int) -> None:
        self.seen[pos] = now
        b = pos * ID_LEN
        if not self.ids.startswith(peer_id, b):  # compares in place, no slice copy
            _put_id(self.ids, b, peer_id)

    def remove(self, addr: bytes) -> bool:
        pos = self.index.pop(addr, None)
        if pos is None:
            return False
        self._fill(pos)
        return True

    def _fill(self, pos: int) -> None:
        """Close the gap at ``pos`` (already gone from the index) with the last peer."""
        last = len(self.seen) - 1
        w = self.width
        keys = self.keys
        moved = keys.pop()
        if pos != last:
            a, b = pos * w, pos * ID_LEN
            keys[pos] = moved
            self.put_addr(self.addrs, a, moved)
            self.ids[b : b + ID_LEN] = self.ids[last * ID_LEN :]
            self.seen[pos] = self.seen[last]
            self.index[moved] = pos
        del self.addrs[last * w :]
        del self.ids[last * ID_LEN :]
        self.seen.pop()

    def expire(self, cutoff: int, lo: int, hi: int) -> int:
        """Drop the peers in positions lo..hi last seen before ``cutoff``; returns how many."""
        stale = [i for i, t in enumerate(self.seen[lo:hi], lo) if t < cutoff]
        keys = self.keys
        for pos in reversed(stale):
            del self.index[keys[pos]]
            self._fill(pos)
        return len(stale)

    def spans(self, count: int, start: float, skip: int = -1) -> list[tuple[int, int]]:
        """Position ranges of up to ``count`` peers from a random start, leaving out ``skip``."""
        n = len(self.seen)
        if skip >= 0:
            if count >= n - 1:
                return [(0, skip), (skip + 1, n)]
            first = int(start * n)
            if (skip - first) % n < count:  # the window holds `skip`: widen it by one
                count += 1
        elif count >= n:
            return [(0, n)]
        else:
            first = int(start * n)
        end = first + count
        ranges = [(first, end)] if end <= n else [(first, n), (0, end - n)]
        if skip < 0:
            return ranges
        cut = []
        for lo, hi in ranges:
            if lo <= skip < hi:
                cut += [(lo, skip), (skip + 1, hi)]
            else:
                cut.append((lo, hi))
        return cut

    def packed(self, count: int, start: float, skip: int = -1) -> bytes:
        w = self.width
        addrs = self.addrs
        n = len(self.seen)
        # most swarms are smaller than a reply: all of the group, minus the announcer
        if skip < 0:
            if count >= n:
                return bytes(addrs)
            # a window from a random start: one slice, or two where it wraps round
            first = int(start * n) * w
            end = first + count * w
            if end <= len(addrs):
                return bytes(addrs[first:end])
            return b"".join((addrs[first:], addrs[: end - len(addrs)]))
        if count >= n - 1:
            return b"".join((addrs[: skip * w], addrs[(skip + 1) * w :]))
        return b"".join([addrs[lo * w : hi * w] for lo, hi in self.spans(count, start, skip)])

    def listed(self, count: int, start: float, skip: int = -1) -> Iterator[tuple[str, int, bytes]]:
        """(ip, port, peer id) of the same peers ``packed`` would give."""
        w = self.width
        family = AF_INET if w == WIDTH_V4 else AF_INET6
        for lo, hi in self.spans(count, start, skip):
            for pos in range(lo, hi):
                addr = self.addrs[pos * w : pos * w + w]
                yield (
                    inet_ntop(family, bytes(addr[:-2])),
                    int.from_bytes(addr[-2:], "big"),
                    bytes(self.ids[pos * ID_LEN : pos * ID_LEN + ID_LEN]),
                )


class Swarm:
    """All peers of one torrent: a registry entry's v1 and v2 announcers meet here."""

    __slots__ = ("completions", "groups")

    def __init__(self) -> None:
        self.groups: list[PeerGroup | None] = [None, None, None, None]
        # completed events of a hash without a registry entry (open mode); kept while the
        # swarm has peers, as opentracker does. Registered entries count in the catalog.
        self.completions = 0

    def group(self, slot: int) -> PeerGroup:
        group = self.groups[slot]
        if group is None:
            group = self.groups[slot] = PeerGroup(WIDTH_V6 if slot >= LEECHERS6 else WIDTH_V4)
        return group

    def counts(self) -> tuple[int, int]:
        """(seeders, leechers)."""
        # len(group.seen), not len(group): this runs on every announce
        l4, s4, l6, s6 = self.groups
        return (
            (len(s4.seen) if s4 is not None else 0) + (len(s6.seen) if s6 is not None else 0),
            (len(l4.seen) if l4 is not None else 0) + (len(l6.seen) if l6 is not None else 0),
        )

    def __len__(self) -> int:
        return sum(len(g) for g in self.groups if g is not None)

    def pick(
        self, v6: bool, seeding: bool, numwant: int, me: int = -1, both_families: bool = True
    ) -> tuple[list[tuple[PeerGroup, int, int]], int]:
        """Which groups to take peers from, in order: a seeder gets leechers only; a leecher
        gets seeders first. The announcer's own family comes first, the other one only with
        ``both_families`` (a UDP reply holds one family). ``me`` is the announcer's position in
        its own group, left out. Returns [(group, count, skip)] and the total."""
        own = LEECHERS6 if v6 else LEECHERS4
        other = LEECHERS4 if v6 else LEECHERS6
        if not both_families:
            order: tuple[int, ...] = (own,) if seeding else (own + 1, own)
        else:
            order = (own, other) if seeding else (own + 1, own, other + 1, other)
        plan = []
        total = 0
        for slot in order:
            if total >= numwant:
                break
            group = self.groups[slot]
            if group is None:
                continue
            skip = me if slot == own and not seeding else -1
            available = len(group.seen) - (skip >= 0)
            take = min(available, numwant - total)
            if take > 0:
                plan.append((group, take, skip))
                total += take
        return plan, total


class SwarmStore:
    """Every swarm, keyed by its 20-byte swarm hash, with the peer count kept current."""

    def __init__(self, rand: Callable[[], float]) -> None:
        self.swarms: dict[bytes, Swarm] = {}
        self.peer_count = 0
        self.rand = rand
        self._sweep: list[bytes] | None = None
        self._sweep_at = (0, 0, -1)  # swarm, group slot, upper bound of the part left to scan

    def get(self, key: bytes) -> Swarm | None:
        return self.swarms.get(key)

    def put(
        self, key: bytes, addr: bytes, peer_id: bytes, seeding: bool, now: int
    ) -> tuple[Swarm, PeerGroup, int, int]:
        """Add or refresh a peer. Returns its swarm, group, position and what it was before."""
        swarm = self.swarms.get(key)
        if swarm is None:
            swarm = self.swarms[key] = Swarm()
        slot = (2 if len(addr) == WIDTH_V6 else 0) + seeding
        groups = swarm.groups
        group = groups[slot]
        if group is None:
            group = swarm.group(slot)
        else:
            pos = group.index.get(addr)
            if pos is not None:
                group.touch(pos, peer_id, now)
                return swarm, group, pos, WAS_SEEDER if seeding else WAS_LEECHER
        before = NEW
        twin = groups[slot ^ 1]  # the same family in the other state
        if twin is not None and addr in twin.index:
            twin.remove(addr)
            before = WAS_LEECHER if seeding else WAS_SEEDER
        else:
            self.peer_count += 1
        pos = int(self.rand() * (len(group.seen) + 1))
        group.add(addr, peer_id, now, pos)
        return swarm, group, pos, before

    def remove(self, key: bytes, addr: bytes) -> Swarm | None:
        """Drop a peer (a stopped event). Returns its swarm, if there is one."""
        swarm = self.swarms.get(key)
        if swarm is None:
            return None
        base = 2 if len(addr) == WIDTH_V6 else 0
        for slot in (base, base + 1):
            group = swarm.groups[slot]
            if group is not None and group.remove(addr):
                self.peer_count -= 1
                break
        if not len(swarm):
            del self.swarms[key]
        return swarm

    def drop(self, key: bytes) -> int:
        """Remove a whole swarm (its entry was deleted); returns how many peers it had."""
        swarm = self.swarms.pop(key, None)
        if swarm is None:
            return 0
        gone = len(swarm)
        self.peer_count -= gone
        return gone

    def expire(self, cutoff: int, budget: int) -> bool:
        """Drop peers last seen before ``cutoff``, scanning about ``budget`` peers per call, so
        that a pass over a million peers runs in small slices. True when a pass has finished."""
        if self._sweep is None:
            self._sweep = list(self.swarms)
            self._sweep_at = (0, 0, -1)
        keys = self._sweep
        at, slot, hi = self._sweep_at
        while at < len(keys):
            swarm = self.swarms.get(keys[at])
            while swarm is not None and slot < 4:
                group = swarm.groups[slot]
                n = len(group) if group is not None else 0
                top = n if hi < 0 else min(hi, n)
                lo = max(0, top - budget)
                if group is not None and top > lo:
                    self.peer_count -= group.expire(cutoff, lo, top)
                    budget -= top - lo
                if lo > 0:
                    self._sweep_at = (at, slot, lo)
                    return False
                slot, hi = slot + 1, -1
                if budget <= 0:
                    self._sweep_at = (at, slot, -1)
                    return False
            if swarm is not None and not len(swarm):
                del self.swarms[keys[at]]
            at, slot = at + 1, 0
        self._sweep = None
        return True
