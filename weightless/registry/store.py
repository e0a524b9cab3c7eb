"""The store seam: what the tracker and the registry need from a database.

Two implementations (SQLite embedded, PostgreSQL through txpostgres) answer the same calls with
the same behaviour; every call returns a Deferred and never blocks the reactor."""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet.defer import Deferred
from zope.interface import Interface

from weightless.tracker.accounting import PendingWrites
from weightless.tracker.catalog import CatalogEntry


class StoreUnavailable(Exception):
    """The database cannot be reached (or did not answer in time)."""


@dataclass
class Snapshot:
    """What the in-memory catalog is loaded from at start."""

    entries: list[CatalogEntry] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


class IStore(Interface):
    def open() -> Deferred[None]:
        """Connect and apply the numbered migrations not applied yet."""

    def close() -> Deferred[None]:
        """Release connections and threads."""

    def ping() -> Deferred[None]:
        """Fail with StoreUnavailable when the database does not answer."""

    def snapshot() -> Deferred[Snapshot]:
        """Every entry's hashes and completions, and every blocked hash."""

    def flush(pending: PendingWrites) -> Deferred[None]:
        """Add queued completions and user traffic, in one transaction."""

    def upsert(entry: dict[str, object]) -> Deferred[None]:
        """Insert or update a registry entry by info_hash, keeping verified and completions."""

    def block(hashes: list[str], reason: str) -> Deferred[None]:
        """Remove the entries with these hashes and add the hashes to the blocklist."""

    def user(user_id: str) -> Deferred[tuple[int, int] | None]:
        """A user's accounted (uploaded, downloaded) bytes, or None for a user never seen."""
