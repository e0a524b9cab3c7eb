"""The in-memory catalog: which hashes are registered, which are blocked, and which swarm each
wire hash belongs to. Loaded from the store at start and kept current on every write, so an
announce never waits on the database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def wire_hashes(info_hash: str, v1_info_hash: str | None = None) -> list[bytes]:
    """The 20-byte hashes clients announce for a registry hash (hex): a v1 SHA-1 as it is,
    a v2 SHA-256 truncated to 20 bytes (BEP 52)."""
    hashes = [bytes.fromhex(info_hash)[:20]]
    if v1_info_hash:
        hashes.append(bytes.fromhex(v1_info_hash))
    return hashes


@dataclass(slots=True, eq=False)
class CatalogEntry:
    info_hash: str  # the registry key: 64 hex (v2) or 40 hex (v1-only)
    v1_info_hash: str | None
    completions: int

    @property
    def swarm_key(self) -> bytes:
        return bytes.fromhex(self.info_hash)[:20]

    def wire_hashes(self) -> list[bytes]:
        return wire_hashes(self.info_hash, self.v1_info_hash)


class Catalog:
    def __init__(self) -> None:
        self.entries: dict[str, CatalogEntry] = {}
        self.by_wire: dict[bytes, tuple[bytes, CatalogEntry]] = {}  # wire hash -> swarm, entry
        self.blocked: set[bytes] = set()

    def load(self, entries: Iterable[CatalogEntry], blocked: Iterable[str]) -> None:
        self.entries.clear()
        self.by_wire.clear()
        self.blocked = {bytes.fromhex(h)[:20] for h in blocked}
        for entry in entries:
            self.add(entry)

    def add(self, entry: CatalogEntry) -> None:
        """Register (or re-register) an entry; an upsert keeps the completions counted so far."""
        old = self.entries.get(entry.info_hash)
        if old is not None:
            entry.completions = max(entry.completions, old.completions)
            self._unlink(old)
        self.entries[entry.info_hash] = entry
        key = entry.swarm_key
        for wire in entry.wire_hashes():
            self.by_wire[wire] = (key, entry)

    def _unlink(self, entry: CatalogEntry) -> None:
        for wire in entry.wire_hashes():
            if self.by_wire.get(wire, (b"", None))[1] is entry:
                del self.by_wire[wire]

    def lookup(self, info_hash: str) -> CatalogEntry | None:
        """An entry by its info_hash or its v1_info_hash (hex, any case)."""
        info_hash = info_hash.lower()
        entry = self.entries.get(info_hash)
        if entry is None and len(info_hash) == 40:
            found = self.by_wire.get(bytes.fromhex(info_hash))
            if found is not None and found[1].v1_info_hash == info_hash:
                entry = found[1]
        return entry

    def remove(self, entry: CatalogEntry) -> None:
        self._unlink(entry)
        self.entries.pop(entry.info_hash, None)

    def block(self, hashes: Iterable[str]) -> None:
        self.blocked.update(bytes.fromhex(h)[:20] for h in hashes)

    def unblock(self, hashes: Iterable[str]) -> None:
        self.blocked.difference_update(bytes.fromhex(h)[:20] for h in hashes)
