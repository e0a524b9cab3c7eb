"""Swarm snapshots: what a clean stop writes so that a restart does not empty the swarms.

Pure: bytes out, bytes in. The layout is the in-memory one (packed addresses, peer ids, last
announce times), so writing and reading a million peers is a few large copies."""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Iterator

from weightless.tracker.swarm import ID_LEN, OtherHash, PeerGroup, Swarm, SwarmStore

MAGIC = b"WLSWARM2"
OLD_MAGIC = b"WLSWARM1"  # before hybrid swarms had a peer list per hash: one list each
# swarm key, completions of an unregistered hash, peer lists (2: a hybrid's other hash too)
_SWARM = struct.Struct("<20sQB")
_SWARM1 = struct.Struct("<20sQ")
_COUNT = struct.Struct("<I")


class SnapshotError(ValueError):
    """The file is not a snapshot, or it is truncated."""


def dump(store: SwarmStore) -> Iterator[bytes]:
    """The snapshot as chunks (write them in order)."""
    yield MAGIC
    for key, swarm in store.swarms.items():
        lists = [swarm] if swarm.other is None else [swarm, swarm.other]
        yield _SWARM.pack(key, swarm.completions, len(lists))
        for group in (g for peers in lists for g in peers.groups):
            if group is None or not len(group):
                yield _COUNT.pack(0)
                continue
            yield _COUNT.pack(len(group))
            yield bytes(group.addrs)
            yield bytes(group.ids)
            yield group.seen.tobytes()  # native order: snapshots do not travel between machines


def merge(parts: list[bytes]) -> bytes:
    """One snapshot from several (each worker writes its own swarms)."""
    for part in parts:
        if not part.startswith(MAGIC):
            raise SnapshotError("not a current Weightless swarm snapshot")
    return MAGIC + b"".join(part[len(MAGIC) :] for part in parts)


def load(
    data: bytes, store: SwarmStore, cutoff: int, keep: Callable[[bytes], bool] = lambda k: True
) -> int:
    """Add the peers of a snapshot seen at or after ``cutoff`` to ``store``, for the swarms
    ``keep`` accepts (a worker keeps the swarms it owns). Returns how many peers came back."""
    old = data.startswith(OLD_MAGIC)
    if not old and not data.startswith(MAGIC):
        raise SnapshotError("not a Weightless swarm snapshot")
    view = memoryview(data)
    pos = len(MAGIC)
    restored = 0
    try:
        while pos < len(data):
            if old:
                key, completions = _SWARM1.unpack_from(data, pos)
                lists = 1
                pos += _SWARM1.size
            else:
                key, completions, lists = _SWARM.unpack_from(data, pos)
                pos += _SWARM.size
                if lists not in (1, 2):
                    raise SnapshotError("snapshot is damaged")
            wanted = keep(key)  # decided first: a worker skips the swarms it does not own
            groups: list[PeerGroup | None] = []
            for slot in range(4 * lists):
                (count,) = _COUNT.unpack_from(data, pos)
                pos += _COUNT.size
                width = 18 if slot & 3 >= 2 else 6
                if not count:
                    groups.append(None)
                    continue
                end = pos + count * (width + ID_LEN + 4)
                if end > len(data):
                    raise SnapshotError("snapshot is truncated")
                if not wanted:
                    pos = end
                    continue
                addrs = view[pos : pos + count * width]
                ids = view[pos + count * width : pos + count * (width + ID_LEN)]
                seen = array("I")
                seen.frombytes(view[pos + count * (width + ID_LEN) : end])
                pos = end
                groups.append(_fresh(width, addrs, ids, seen, cutoff))
            if wanted:
                restored += _merge(store, key, completions, groups)
    except struct.error:
        raise SnapshotError("snapshot is truncated") from None
    return restored


def _fresh(
    width: int, addrs: memoryview, ids: memoryview, seen: array[int], cutoff: int
) -> PeerGroup | None:
    group = PeerGroup(width)
    keep = [i for i, t in enumerate(seen) if t >= cutoff]
    if not keep:
        return None
    if len(keep) == len(seen):
        group.addrs[:] = addrs
        group.ids[:] = ids
        group.seen = seen
    else:
        group.addrs[:] = b"".join(addrs[i * width : (i + 1) * width] for i in keep)
        group.ids[:] = b"".join(ids[i * ID_LEN : (i + 1) * ID_LEN] for i in keep)
        group.seen = array("I", (seen[i] for i in keep))
    a = group.addrs
    group.keys = [bytes(a[i * width : (i + 1) * width]) for i in range(len(group.seen))]
    group.index = {key: i for i, key in enumerate(group.keys)}
    group.reindex()
    return group


def _merge(store: SwarmStore, key: bytes, completions: int, groups: list[PeerGroup | None]) -> int:
    """Put restored groups (four per peer list) into the store; peers already there
    (announced since the start) win."""
    swarm = store.swarms.get(key)
    if swarm is None:
        if not any(groups):
            return 0
        swarm = store.swarms[key] = Swarm()
        swarm.completions = completions
        swarm.groups = groups[:4]
        if any(groups[4:]):
            swarm.other = OtherHash()
            swarm.other.groups = groups[4:]
            swarm.other.recount(swarm)
        restored = len(swarm)
        store.peer_count += restored
        return restored
    before = store.peer_count
    for slot, group in enumerate(groups):
        if group is None:
            continue
        peers = swarm if slot < 4 else swarm.other
        for addr, pos in group.index.items():
            if peers is not None and any(g is not None and addr in g.index for g in peers.groups):
                continue
            peer_id = bytes(group.ids[pos * ID_LEN : (pos + 1) * ID_LEN])
            store.put(key, addr, peer_id, slot & 1 == 1, group.seen[pos], slot >= 4)
            peers = swarm if slot < 4 else swarm.other
    return store.peer_count - before
