"""Stateless BEP 15 connection ids: a timestamp and a keyed MAC of (timestamp, client IP).

A connection id proves the client received a packet at its source address, so announces from
spoofed addresses are refused without any per-client table. Any process holding the same
master secret checks any id, whichever worker handed it out. Time is always passed in.

Layout of the 64-bit id: the high 32 bits are the whole seconds of ``now`` (mod 2**32, so it
wraps in 2106 without harm), the low 32 bits are ``blake2b(ts || ip, key=epoch_key)``, ``ip``
the client's packed address (4 or 16 bytes). The port is not part of an id (as BEP 15, aquatic
and opentracker have it): libtorrent keeps one id per tracker IP and announces from the ports of
all its sessions with it. The
epoch key is ``HMAC-SHA256(master, label || epoch)`` with ``epoch = ts // rotate``: the key
changes every ``rotate`` seconds, and since the epoch is computed from the id's own timestamp an
id stays checkable across a rotation for as long as it is young enough.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

# A byte no passkey user id contains, so these HMACs never collide with passkey signatures
# when the master secret is TRACKER_SECRET.
_LABEL = b"weightless/udp-connection-id\x00"
_TS = struct.Struct(">I")
_EPOCH = struct.Struct(">Q")
_MASK32 = 0xFFFFFFFF
_HALF = 1 << 31
_VERIFIED_MAX = 1 << 16
_WRAP = 1 << 32


class ConnectionIdValidator:
    """Hands out connection ids and checks them, with no state beyond a small key cache."""

    def __init__(
        self,
        secret: bytes,
        max_age: float = 120.0,
        rotate: float = 3600.0,
        skew: float = 5.0,
    ) -> None:
        """``max_age``: how long an id is accepted (BEP 15 says 2 minutes; real clients keep
        ids longer, so deployments may raise it). ``rotate``: seconds per key epoch, at least 1.
        ``skew``: how far in the future an id may be, for workers whose clocks differ."""
        if not secret:
            raise ValueError("connection id secret must not be empty")
        if max_age <= 0:
            raise ValueError("max_age must be positive")
        if rotate < 1:
            raise ValueError("rotate must be at least one second")
        if skew < 0:
            raise ValueError("skew must not be negative")
        self._secret = bytes(secret)
        self._max_age = max_age
        self._rotate = int(rotate)
        self._skew = skew
        # Enough epochs for every id that can still be valid, plus the current one.
        self._cache_size = min(int((max_age + skew) // self._rotate) + 3, 1024)
        self._keys: dict[int, hashlib.blake2b] = {}
        self._verified: dict[int, bytes] = {}  # connection id -> the address it was made for

    def make(self, addr: bytes, now: float) -> int:
        """A fresh connection id for the packed client IP ``addr`` (4 or 16 bytes, as
        ``tracker.core.pack_ip`` makes it; an IPv4-mapped address packs as the IPv4 one)."""
        ts = int(now) & _MASK32
        return (ts << 32) | int.from_bytes(self._mac(ts, addr), "big")

    def valid(self, connection_id: int, addr: bytes, now: float) -> bool:
        """True if ``connection_id`` was made for the IP ``addr`` at most ``max_age`` seconds
        ago."""
        if not 0 <= connection_id < 1 << 64:
            return False
        ts = connection_id >> 32
        age = (int(now) - ts) & _MASK32
        if age >= _HALF:  # the id's timestamp is ahead of now
            age -= _WRAP
        if age > self._max_age or age < -self._skew:
            return False
        if self._verified.get(connection_id) == addr:
            return True  # its MAC was checked before: clients reuse an id for minutes
        if not hmac.compare_digest(
            self._mac(ts, addr), (connection_id & _MASK32).to_bytes(4, "big")
        ):
            return False
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()  # a cache: forgetting costs only a recomputation
        self._verified[connection_id] = addr
        return True

    def _mac(self, ts: int, addr: bytes) -> bytes:
        epoch = ts // self._rotate
        keyed = self._keys.get(epoch)
        if keyed is None:
            keyed = self._derive(epoch)
        h = keyed.copy()
        h.update(_TS.pack(ts))
        h.update(addr)
        return h.digest()

    def _derive(self, epoch: int) -> hashlib.blake2b:
        """Key the hash for one epoch; copying a keyed object is cheaper than keying per packet."""
        key = hmac.digest(self._secret, _LABEL + _EPOCH.pack(epoch), "sha256")
        keyed = hashlib.blake2b(key=key, digest_size=4)
        if len(self._keys) >= self._cache_size:
            del self._keys[next(iter(self._keys))]  # the oldest inserted epoch
        self._keys[epoch] = keyed
        return keyed
