"""Swarms: the peers of each torrent, pre-packed so that picking peers for a reply is a slice.

Pure state: the time and the random source are passed in; nothing here does I/O.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from socket import AF_INET, AF_INET6, inet_ntop
from struct import Struct

from weightless.netaddr import NEARBY_PREFIX_BYTES

ID_LEN = 20
WIDTH_V4 = 6  # 4-byte address + 2-byte port, as in a compact reply (BEP 23)
WIDTH_V6 = 18  # BEP 7
# bytes of a packed address that name its network (netaddr.network_key): IPv4 /24, IPv6 /64
NET_V4, NET_V6 = NEARBY_PREFIX_BYTES[4], NEARBY_PREFIX_BYTES[16]
NET_LEN = {WIDTH_V4: NET_V4, WIDTH_V6: NET_V6}

# group slots of a swarm: family * 2 + seeding
LEECHERS4, SEEDERS4, LEECHERS6, SEEDERS6 = 0, 1, 2, 3

NEW, WAS_LEECHER, WAS_SEEDER = 0, 1, 2

# completions remembered per (swarm, peer) so that a late or repeated event=completed from a
# peer that has left is not counted again; the oldest are forgotten first beyond this many
FINISHED_MAX = 1_000_000

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

    __slots__ = ("addrs", "ids", "index", "keys", "net_len", "nets", "put_addr", "seen", "width")

    def __init__(self, width: int) -> None:
        self.width = width
        self.net_len = NET_LEN[width]
        # network key (IPv4 /24, IPv6 /64) -> the peers of this group on that network
        # a network with one peer maps to that peer's packed address: most peers are alone on
        # theirs, and plain bytes cost no object per peer (nor the garbage collector's time)
        self.nets: dict[bytes, bytes | Nearby] = {}
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
        net = addr[: self.net_len]
        nets = self.nets
        found = nets.get(net)
        if found is None:  # the common case, inlined
            nets[net] = addr
        else:
            self._join(addr)

    def _join(self, addr: bytes) -> None:
        """Enter ``addr`` in the index by network."""
        nets = self.nets
        net = addr[: self.net_len]
        found = nets.get(net)
        if found is None:
            nets[net] = addr
        elif type(found) is bytes:
            nearby = nets[net] = Nearby(self)
            nearby.add(found)
            nearby.add(addr)
        else:
            assert isinstance(found, Nearby)
            found.add(addr)

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
        gone = keys[pos]
        net = gone[: self.net_len]
        found = self.nets[net]
        if type(found) is bytes:
            del self.nets[net]
        else:
            assert isinstance(found, Nearby)
            found.remove(gone)
            if len(found.keys) == 1:
                self.nets[net] = found.keys[0]
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

    def expire(self, cutoff: int, lo: int, hi: int) -> list[bytes]:
        """Drop the peers in positions lo..hi last seen before ``cutoff``; returns their
        packed addresses."""
        stale = [i for i, t in enumerate(self.seen[lo:hi], lo) if t < cutoff]
        keys = self.keys
        gone = []
        for pos in reversed(stale):
            addr = keys[pos]
            gone.append(addr)
            del self.index[addr]
            self._fill(pos)
        return gone

    def reindex(self) -> None:
        """Rebuild the index by network from ``keys`` (after a snapshot is loaded)."""
        self.nets = {}
        for addr in self.keys:
            self._join(addr)

    def nearby(self, net: bytes) -> list[bytes]:
        """The packed addresses of this group's peers on network ``net``."""
        found = self.nets.get(net)
        if found is None:
            return []
        if type(found) is bytes:
            return [found]
        assert isinstance(found, Nearby)
        return found.keys

    def except_picked(self, count: int, start: float, left_out: set[int]) -> Picked:
        """Up to ``count`` peers from a random start, leaving out the positions ``left_out``
        (a few: the announcer, and the peers of its network already in the reply)."""
        n = len(self.seen)
        first = int(start * n)
        positions = []
        for i in range(n):
            pos = (first + i) % n
            if pos not in left_out:
                positions.append(pos)
                if len(positions) >= count:
                    break
        return Picked(self, positions)

    def spans(self, count: int, start: float, skip: int = -1) -> list[tuple[int, int]]:
        """Position ranges of up to ``count`` peers from a random start, leaving out ``skip``."""
        return _spans(len(self.seen), count, start, skip)

    def _packed_skipping(self, count: int, start: float, skip: int) -> bytes:
        w = self.width
        addrs = self.addrs
        n = len(self.seen)
        # _spans inlined: this runs for most announces
        first = int(start * n)
        if (skip - first) % n < count:  # the window holds `skip`: widen it by one
            count += 1
        end = first + count
        ranges = ((first, end),) if end <= n else ((first, n), (0, end - n))
        parts = []
        for lo, hi in ranges:
            if lo <= skip < hi:
                parts.append(addrs[lo * w : skip * w])
                parts.append(addrs[(skip + 1) * w : hi * w])
            else:
                parts.append(addrs[lo * w : hi * w])
        return b"".join(parts)

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
        return self._packed_skipping(count, start, skip)

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


def _spans(n: int, count: int, start: float, skip: int) -> list[tuple[int, int]]:
    """Position ranges of up to ``count`` of ``n`` items from a random start, leaving out
    ``skip`` (-1: none)."""
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


class Nearby:
    """The peers of one group on one network (IPv4 /24, IPv6 /64), in no particular order:
    a list of packed addresses with their places, removal by moving the last one into the
    gap. Gives peers the way PeerGroup does (``packed``, ``listed``)."""

    __slots__ = ("at", "group", "keys", "width")

    def __init__(self, group: PeerGroup) -> None:
        self.group = group
        self.width = group.width
        self.keys: list[bytes] = []
        self.at: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, addr: bytes) -> None:
        self.at[addr] = len(self.keys)
        self.keys.append(addr)

    def remove(self, addr: bytes) -> None:
        i = self.at.pop(addr)
        keys = self.keys
        last = keys.pop()
        if i < len(keys):
            keys[i] = last
            self.at[last] = i

    def packed(self, count: int, start: float, skip: int = -1) -> bytes:
        keys = self.keys
        return b"".join(
            [a for lo, hi in _spans(len(keys), count, start, skip) for a in keys[lo:hi]]
        )

    def listed(self, count: int, start: float, skip: int = -1) -> Iterator[tuple[str, int, bytes]]:
        keys, index = self.keys, self.group.index
        positions = [
            index[a] for lo, hi in _spans(len(keys), count, start, skip) for a in keys[lo:hi]
        ]
        return Picked(self.group, positions).listed(count, start)


class Picked:
    """Given positions of a group (its peers off the announcer's network, around those
    already picked). Gives them the way PeerGroup does (``packed``, ``listed``)."""

    __slots__ = ("group", "positions", "width")

    def __init__(self, group: PeerGroup, positions: list[int]) -> None:
        self.group = group
        self.width = group.width
        self.positions = positions

    def packed(self, count: int, start: float, skip: int = -1) -> bytes:
        keys = self.group.keys
        return b"".join([keys[pos] for pos in self.positions])

    def listed(self, count: int, start: float, skip: int = -1) -> Iterator[tuple[str, int, bytes]]:
        g = self.group
        w = g.width
        family = AF_INET if w == WIDTH_V4 else AF_INET6
        for pos in self.positions:
            addr = g.keys[pos]
            yield (
                inet_ntop(family, addr[:-2]),
                int.from_bytes(addr[-2:], "big"),
                bytes(g.ids[pos * ID_LEN : pos * ID_LEN + ID_LEN]),
            )


# where a reply takes its peers from: (seeders?, nearby?) in order, for a leecher and for a
# seeder. The announcer's network comes first; a seeder still gets every leecher before any
# seeder (a seeder has nothing to fetch from a seeder: they only fill a reply, for a client
# fetching a magnet's metadata with left=0). Within each part the peers are a random sample.
# The other address family follows, when the reply holds both (HTTP), without the nearby
# distinction: seeders then leechers for a leecher, leechers then seeders for a seeder.
NEAR_LEECHER_ORDER = ((True, True), (False, True), (True, False), (False, False))
NEAR_SEEDER_ORDER = ((False, True), (False, False), (True, True), (True, False))


def reply_order(seeding: bool) -> tuple[tuple[bool, bool], ...]:
    """(seeders?, on the announcer's network?) of each part of an announce reply, in order,
    for the announcer's own address family. The one definition of the order, for every swarm
    store."""
    return NEAR_SEEDER_ORDER if seeding else NEAR_LEECHER_ORDER


class Swarm:
    """All peers of one torrent: the unit that is counted (a registry entry's seeders,
    leechers and completions).

    Peer lists follow the announced hash: ``groups`` hold the peers that announced the swarm
    key itself; ``other`` (a hybrid entry only) the peers that announced the entry's other
    hash (its v1 hash). A peer in both lists is counted once."""

    __slots__ = ("completions", "groups", "other")

    def __init__(self) -> None:
        self.groups: list[PeerGroup | None] = [None, None, None, None]
        # completed downloads of a hash without a registry entry (open mode); kept while the
        # swarm has peers, as opentracker does. Registered entries count in the catalog.
        self.completions = 0
        self.other: OtherHash | None = None

    def group(self, slot: int) -> PeerGroup:
        group = self.groups[slot]
        if group is None:
            group = self.groups[slot] = PeerGroup(WIDTH_V6 if slot >= LEECHERS6 else WIDTH_V4)
        return group

    def counts(self) -> tuple[int, int]:
        """(seeders, leechers), each peer once whichever of the swarm's hashes it announced."""
        # len(group.seen), not len(group): this runs on every announce
        l4, s4, l6, s6 = self.groups
        seeders = (len(s4.seen) if s4 is not None else 0) + (len(s6.seen) if s6 is not None else 0)
        leechers = (len(l4.seen) if l4 is not None else 0) + (len(l6.seen) if l6 is not None else 0)
        other = self.other
        if other is not None:
            more_seeders, more_leechers = other.counts()
            seeders += more_seeders - other.both_seeding
            leechers += more_leechers - other.both_leeching
        return seeders, leechers

    def own_len(self) -> int:
        """Peers in this list alone."""
        return sum(len(g) for g in self.groups if g is not None)

    def __len__(self) -> int:
        """Peers of the swarm, each once."""
        other = self.other
        if other is None:
            return self.own_len()
        return self.own_len() + other.own_len() - other.both_seeding - other.both_leeching

    def pick(
        self,
        v6: bool,
        seeding: bool,
        numwant: int,
        me: int = -1,
        both_families: bool = True,
        addr: bytes | None = None,
        rand: Callable[[], float] | None = None,
    ) -> tuple[list[tuple[PeerGroup | Nearby | Picked, int, int]], int]:
        """Which groups of this list to take peers from, in order: a leecher gets seeders
        first, then leechers; a seeder gets leechers first, then seeders to fill the reply (a
        client fetching a magnet's metadata announces left=0 and needs peers of any kind).
        The announcer's own family comes first, the other one only with ``both_families`` (a
        UDP reply holds one family). ``me`` is the announcer's position in its own group, left
        out. With ``addr`` (the announcer's packed address and port), peers on its network
        come first (``reply_order``). Returns [(source, count, skip)] (a source gives peers
        with ``packed`` and ``listed``) and the total."""
        own = LEECHERS6 if v6 else LEECHERS4
        other = LEECHERS4 if v6 else LEECHERS6
        if seeding:
            order: tuple[int, ...] = (
                (own, other, own + 1, other + 1) if both_families else (own, own + 1)
            )
        else:
            order = (own + 1, own, other + 1, other) if both_families else (own + 1, own)
        mine = own + seeding  # the announcer's own group
        if addr is not None and rand is not None:
            # most announcers are alone on their network in a swarm: two look-ups tell
            net = addr[: NET_V6 if v6 else NET_V4]
            groups = self.groups
            group = groups[own]
            found = None if group is None else group.nets.get(net)
            if found is None or found == addr:
                group = groups[own + 1]
                found = None if group is None else group.nets.get(net)
            if found is not None and found != addr:  # someone else is on its network
                # and someone is off it (all on it, as in a cluster, is the usual order)
                g, h = groups[own], groups[own + 1]
                if (g is not None and g.nets and (len(g.nets) > 1 or net not in g.nets)) or (
                    h is not None and h.nets and (len(h.nets) > 1 or net not in h.nets)
                ):
                    return self._pick_near(
                        own, seeding, numwant, addr, net, both_families, other, me, rand
                    )
        plan: list[tuple[PeerGroup | Nearby | Picked, int, int]] = []
        total = 0
        for slot in order:
            if total >= numwant:
                break
            group = self.groups[slot]
            if group is None:
                continue
            skip = me if slot == mine else -1
            available = len(group.seen) - (skip >= 0)
            take = min(available, numwant - total)
            if take > 0:
                plan.append((group, take, skip))
                total += take
        return plan, total

    def _pick_near(
        self,
        own: int,
        seeding: bool,
        numwant: int,
        addr: bytes,
        net: bytes,
        both_families: bool,
        other: int,
        me: int,
        rand: Callable[[], float],
    ) -> tuple[list[tuple[PeerGroup | Nearby | Picked, int, int]], int]:
        """``pick`` when the announcer's network has other peers in this list: those first
        (``reply_order``). Only what the reply takes is looked at: a group whose peers are all
        on the network is one slice as usual; a nearby part is a slice of its network's peers;
        a part off the network (reached only once that group's nearby peers are all in the
        reply, so fewer than ``numwant``) skips them."""
        plan: list[tuple[PeerGroup | Nearby | Picked, int, int]] = []
        total = 0
        mine = own + seeding
        groups = self.groups
        for seeders, near in reply_order(seeding):
            if total >= numwant:
                break
            slot = own + seeders
            group = groups[slot]
            if group is None:
                continue
            n = len(group.seen)
            members = group.nearby(net)
            k = len(members)
            skip = me if slot == mine else -1
            if k == n:  # the whole group is on the network: nothing of it is off it
                if near:
                    take = min(n - (skip >= 0), numwant - total)
                    if take > 0:
                        plan.append((group, take, skip))
                        total += take
                continue
            if not k:  # nobody of this group on the network
                if not near:
                    take = min(n - (skip >= 0), numwant - total)
                    if take > 0:
                        plan.append((group, take, skip))
                        total += take
                continue
            if near:
                found = group.nets[net]
                if isinstance(found, Nearby):
                    nskip = found.at[addr] if skip >= 0 else -1
                    take = min(k - (nskip >= 0), numwant - total)
                    if take > 0:
                        plan.append((found, take, nskip))
                        total += take
                elif skip < 0:  # one peer on the network, not the announcer
                    plan.append((Picked(group, [group.index[found]]), 1, -1))
                    total += 1
                continue
            index = group.index
            left_out = {index[a] for a in members}  # the announcer among them, if here
            take = min(n - len(left_out), numwant - total)
            if take > 0:
                plan.append((group.except_picked(take, rand(), left_out), take, -1))
                total += take
        if both_families:
            for seeders in (False, True) if seeding else (True, False):
                if total >= numwant:
                    break
                group = groups[other + seeders]
                if group is None:
                    continue
                take = min(len(group.seen), numwant - total)
                if take > 0:
                    plan.append((group, take, -1))
                    total += take
        return plan, total


class OtherHash(Swarm):
    """The peer list of a hybrid entry's second hash, beside the swarm's own. Keeps how many
    of its peers are also in the swarm's own list, by state, so that each is counted once.
    A peer in both lists has the same state in both (its last announce sets both)."""

    __slots__ = ("both_leeching", "both_seeding")

    def __init__(self) -> None:
        super().__init__()
        self.both_seeding = 0
        self.both_leeching = 0

    def recount(self, swarm: Swarm) -> None:
        """Count the peers in both lists from scratch (after a snapshot is loaded)."""
        self.both_seeding = self.both_leeching = 0
        for slot, group in enumerate(self.groups):
            if group is None:
                continue
            for addr in group.index:
                state = _state(swarm.groups, addr)
                if state != NEW:
                    self._pair(slot & 1 == 1, state == WAS_SEEDER, 1)

    def _pair(self, here_seeding: bool, there_seeding: bool, change: int) -> None:
        """A peer in both lists joins (+1) or leaves (-1) the count of doubles: as a seeder
        if it seeds in either list."""
        if here_seeding or there_seeding:
            self.both_seeding += change
        else:
            self.both_leeching += change


def _state(groups: list[PeerGroup | None], addr: bytes) -> int:
    """NEW (not there), WAS_LEECHER or WAS_SEEDER: where ``addr`` is among ``groups``."""
    base = 2 if len(addr) == WIDTH_V6 else 0
    group = groups[base]
    if group is not None and addr in group.index:
        return WAS_LEECHER
    group = groups[base + 1]
    if group is not None and addr in group.index:
        return WAS_SEEDER
    return NEW


class SwarmStore:
    """Every swarm, keyed by its 20-byte swarm key, with the peer count kept current (each
    peer once per swarm)."""

    def __init__(self, rand: Callable[[], float]) -> None:
        self.swarms: dict[bytes, Swarm] = {}
        self.peer_count = 0
        self.rand = rand
        self._sweep: list[bytes] | None = None
        # swarm key + packed address -> when its download was counted (whole seconds)
        self.finished: OrderedDict[bytes, int] = OrderedDict()
        # swarm, group slot (4-7: the other hash's list), upper bound of the part left to scan
        self._sweep_at = (0, 0, -1)

    def get(self, key: bytes) -> Swarm | None:
        return self.swarms.get(key)

    def count_completion(self, key: bytes, addr: bytes, now: int, known_leecher: bool) -> bool:
        """Whether a peer that has just finished a download of swarm ``key`` is a completed
        download not counted yet, and remember it. A known leecher that finished always is
        (a peer may download again); a peer new to the swarm that sends event=completed is,
        unless its completion was counted within --peer-ttl (a late or repeated event after
        it left)."""
        mark = key + addr
        finished = self.finished
        if not known_leecher and mark in finished:
            return False
        finished[mark] = now
        finished.move_to_end(mark)
        if len(finished) > FINISHED_MAX:
            finished.popitem(last=False)
        return True

    def _forget_completions(self, cutoff: int, budget: int) -> None:
        finished = self.finished
        while finished and budget > 0:
            mark, when = next(iter(finished.items()))
            if when >= cutoff:
                break
            del finished[mark]
            budget -= 1

    def put(
        self, key: bytes, addr: bytes, peer_id: bytes, seeding: bool, now: int, other: bool = False
    ) -> tuple[Swarm, PeerGroup, int, int]:
        """Add or refresh a peer in the list of the swarm's own hash, or with ``other`` in the
        list of its other hash (a hybrid entry's v1 hash). Returns the swarm, the peer's group
        and position, and what the peer was in the swarm before (NEW, WAS_LEECHER or
        WAS_SEEDER, whichever list it was in)."""
        swarm = self.swarms.get(key)
        if swarm is None:
            swarm = self.swarms[key] = Swarm()
        if other:
            peers: Swarm | None = swarm.other
            if peers is None:
                peers = swarm.other = OtherHash()
        else:
            peers = swarm
        slot = (2 if len(addr) == WIDTH_V6 else 0) + seeding
        groups = peers.groups
        group = groups[slot]
        if group is None:
            group = peers.group(slot)
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
        if swarm.other is None:
            if before == NEW:
                self.peer_count += 1
        else:
            before = self._moved(swarm, other, addr, before, seeding)
        pos = int(self.rand() * (len(group.seen) + 1))
        group.add(addr, peer_id, now, pos)
        return swarm, group, pos, before

    def _moved(self, swarm: Swarm, other: bool, addr: bytes, before: int, seeding: bool) -> int:
        """Bookkeeping of a hybrid swarm when a peer joins one list or changes state there:
        the same peer in the other list takes the same state, and is counted once. Returns
        what the peer was in the swarm before."""
        doubles = swarm.other
        assert doubles is not None
        there = (swarm if other else doubles).groups
        state = _state(there, addr)
        if state == NEW:
            if before == NEW:
                self.peer_count += 1
            return before
        was_seeding = state == WAS_SEEDER
        if before != NEW:
            doubles._pair(before == WAS_SEEDER, was_seeding, -1)
        if was_seeding != seeding:  # it finished (or started over) under the other hash too
            base = 2 if len(addr) == WIDTH_V6 else 0
            source = there[base + was_seeding]
            assert source is not None
            at = source.index[addr]
            peer_id = bytes(source.ids[at * ID_LEN : (at + 1) * ID_LEN])
            last = source.seen[at]
            source.remove(addr)
            target = there[base + seeding]
            if target is None:
                target = (swarm if other else doubles).group(base + seeding)
            target.add(addr, peer_id, last, int(self.rand() * (len(target.seen) + 1)))
        doubles._pair(seeding, seeding, 1)
        return before if before != NEW else state

    def _left(self, swarm: Swarm, other: bool, addr: bytes, was_seeding: bool) -> None:
        """Bookkeeping when a peer left one list of a hybrid swarm."""
        doubles = swarm.other
        assert doubles is not None
        state = _state((swarm if other else doubles).groups, addr)
        if state == NEW:
            self.peer_count -= 1
        else:
            doubles._pair(was_seeding, state == WAS_SEEDER, -1)

    def remove(
        self, key: bytes, addr: bytes, other: bool = False, finished: bool = False
    ) -> tuple[Swarm | None, int]:
        """Drop a peer from one list (a stopped event). With ``finished`` (it stopped with
        left=0) the peer is a seeder first: in the other list, if it is there. Returns its
        swarm, if there is one, and what the peer was in the swarm before."""
        swarm = self.swarms.get(key)
        if swarm is None:
            return None, NEW
        peers = swarm.other if other else swarm
        base = 2 if len(addr) == WIDTH_V6 else 0
        before = NEW
        if peers is not None:
            for slot in (base, base + 1):
                group = peers.groups[slot]
                if group is not None and group.remove(addr):
                    before = WAS_SEEDER if slot & 1 else WAS_LEECHER
                    if swarm.other is None:
                        self.peer_count -= 1
                    else:
                        self._left(swarm, other, addr, slot == base + 1)
                    break
        if swarm.other is not None:
            there = (swarm if other else swarm.other).groups
            state = _state(there, addr)
            if before == NEW:
                before = state
            if finished and state == WAS_LEECHER:
                # what a finished download looks like from the other hash: a seeder
                self.put(key, addr, _peer_id(there, addr), True, _seen(there, addr), not other)
            if not swarm.other.own_len():
                swarm.other = None
        elif other:  # stopped under a hybrid's other hash, known under its own hash only
            before = _state(swarm.groups, addr)
            if finished and before == WAS_LEECHER:
                self.put(key, addr, _peer_id(swarm.groups, addr), True, _seen(swarm.groups, addr))
        if not len(swarm):
            del self.swarms[key]
        return swarm, before

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
            self._forget_completions(cutoff, budget)
            self._sweep = list(self.swarms)
            self._sweep_at = (0, 0, -1)
        keys = self._sweep
        at, slot, hi = self._sweep_at
        while at < len(keys):
            swarm = self.swarms.get(keys[at])
            while swarm is not None and slot < 8:
                peers = swarm if slot < 4 else swarm.other
                group = peers.groups[slot & 3] if peers is not None else None
                n = len(group) if group is not None else 0
                top = n if hi < 0 else min(hi, n)
                lo = max(0, top - budget)
                if group is not None and top > lo:
                    gone = group.expire(cutoff, lo, top)
                    if swarm.other is None:
                        self.peer_count -= len(gone)
                    else:
                        for addr in gone:
                            self._left(swarm, slot >= 4, addr, slot & 1 == 1)
                    budget -= top - lo
                if lo > 0:
                    self._sweep_at = (at, slot, lo)
                    return False
                slot, hi = slot + 1, -1
                if budget <= 0:
                    self._sweep_at = (at, slot, -1)
                    return False
            if swarm is not None:
                if swarm.other is not None and not swarm.other.own_len():
                    swarm.other = None
                if not len(swarm):
                    del self.swarms[keys[at]]
            at, slot = at + 1, 0
        self._sweep = None
        return True


def _peer_id(groups: list[PeerGroup | None], addr: bytes) -> bytes:
    for group in groups:
        if group is not None and addr in group.index:
            at = group.index[addr] * ID_LEN
            return bytes(group.ids[at : at + ID_LEN])
    raise KeyError(addr)


def _seen(groups: list[PeerGroup | None], addr: bytes) -> int:
    for group in groups:
        if group is not None and addr in group.index:
            return group.seen[group.index[addr]]
    raise KeyError(addr)
