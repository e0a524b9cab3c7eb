"""The store seam: what the tracker and the registry need from a database.

Two implementations (SQLite embedded, PostgreSQL through txpostgres) answer the same calls with
the same behaviour; every call returns a Deferred and never blocks the reactor. Cancelling one of
those Deferreds (a timeout) fails it at once and leaves the database work to finish on its own."""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet.defer import Deferred
from zope.interface import Interface

from weightless.registry.entries import Entry
from weightless.registry.search import Search
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.catalog import CatalogEntry


class StoreUnavailable(Exception):
    """The database cannot be reached (or did not answer in time)."""


class Rejected(Exception):
    """The database refused a value of a write (out of range, a character it cannot store):
    trying the same write again cannot succeed."""


class Blocked(Exception):
    """A write for a hash on the blocklist."""


class Conflict(Exception):
    """The write would give a hash to two entries (a v1_info_hash already in use)."""


class NotOwner(Exception):
    """An upsert with an ``owner`` found the entry stored under another publisher."""


class Unsigned(Exception):
    """An upsert that must respect signed namespaces was not signed by a key trusted for the
    publisher named in the message (the entry's, or the stored entry's)."""


@dataclass
class Snapshot:
    """What the in-memory catalog is loaded from at start."""

    entries: list[CatalogEntry] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


class IRegistryListener(Interface):
    """Told about registry writes made by other processes (PostgreSQL LISTEN/NOTIFY)."""

    def upserted(info_hash: str, v1_info_hash: str | None, completions: int) -> None:
        """An entry was added or updated."""

    def taken_down(hashes: list[str]) -> None:
        """An entry (if any) with these hashes was removed and the hashes blocked."""

    def resync(snapshot: Snapshot) -> None:
        """Notifications may have been missed (start, reconnection): here is the whole state."""


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
        """Add queued completions and user traffic, in one transaction; every sum saturates at
        2^63-1. Fails with Rejected when the database refuses a value of the batch (nothing of
        it is written), with StoreUnavailable when it cannot be reached."""

    def upsert(
        entry: Entry,
        torrent_data: bytes | None = None,
        meta: str | None = None,
        owner: str | None = None,
        signed_namespaces: bool = False,
    ) -> Deferred[int]:
        """Insert or update an entry by info_hash, keeping completions, the operator's mark,
        and the stored .torrent, v1_info_hash and signature when none is given (a signature
        is dropped when v1_info_hash changes without a new one); ``verified`` is recomputed.
        ``meta`` is the /meta JSON of ``torrent_data``, stored with it. Fires with the
        completions, and sets ``entry.v1_info_hash`` to the stored one (kept when the upsert
        gave none), so that the catalog and other processes never lose the hybrid's v1 swarm.
        With ``owner``, an existing entry is rewritten only if its publisher is ``owner``
        (checked in the write itself): NotOwner otherwise. With ``signed_namespaces``, a
        publisher with trusted keys (the entry's, or the stored entry's) refuses an entry whose
        ``publisher_key`` is none of them: Unsigned. Blocked for a blocked hash."""

    def meta(info_hash: str) -> Deferred[tuple[str | None, bytes | None] | None]:
        """None when the entry (by either hash) has no file; (the stored /meta JSON, None), or
        (None, the .torrent bytes) for a file stored before /meta was kept with it."""

    def save_meta(info_hash: str, meta: str) -> Deferred[None]:
        """Keep the /meta JSON computed for a file stored without one."""

    def takedown(info_hash: str, reason: str, owner: str | None = None) -> Deferred[list[str]]:
        """Remove the entry with this info_hash or v1_info_hash, if any, and block all its
        hashes (or just this one). Fires with the hashes blocked. With ``owner``, only an
        existing entry of that publisher is taken down (checked in the same transaction):
        NotOwner, and nothing changed, otherwise."""

    def entry(info_hash: str) -> Deferred[Entry | None]:
        """The entry with this info_hash or v1_info_hash."""

    def torrent(info_hash: str) -> Deferred[tuple[str, bytes] | None]:
        """(entry name, stored .torrent bytes) of an entry that has a file."""

    def card(info_hash: str) -> Deferred[str | None]:
        """The model card (Markdown) of the entry with this info_hash or v1_info_hash, or None
        when there is no entry or it has no card."""

    def set_card(
        info_hash: str, text: str, owner: str | None = None, signed_namespaces: bool = False
    ) -> Deferred[bool]:
        """Store the card of the entry with this info_hash or v1_info_hash (kept by upserts,
        removed with the entry); False when there is no such entry. Checked in the write
        itself: with ``owner``, NotOwner unless the entry's publisher is ``owner``; with
        ``signed_namespaces``, Unsigned (naming it) when the entry's publisher has trusted
        keys."""

    def card_view(info_hash: str, renderer: str) -> Deferred[tuple[str, str | None] | None]:
        """(the card, its HTML as ``renderer`` rendered it, or None when none such is kept) of
        the entry with this info_hash or v1_info_hash; None without an entry or a card."""

    def save_card_html(info_hash: str, card: str, renderer: str, html: str) -> Deferred[None]:
        """Keep the HTML ``renderer`` made of ``card``, unless the entry's card is another by
        now (a write in between); replaced by the next card."""

    def search(query: Search) -> Deferred[tuple[list[Entry], int]]:
        """One page of matching entries and how many match in all."""

    def save_counts(counts: dict[str, tuple[int, int]], reset: bool) -> Deferred[None]:
        """Record live (seeders, leechers) per info_hash, for sort=seeders; ``reset`` first
        zeroes every entry not in ``counts``."""

    def trusted_keys(publisher: str) -> Deferred[list[str]]:
        """The public keys (64 hex, sorted) trusted for a publisher name; [] for none."""

    def set_trusted_keys(publisher: str, keys: list[str]) -> Deferred[None]:
        """Replace the keys trusted for a publisher and recompute ``verified`` of its entries,
        in one transaction."""

    def set_operator_mark(info_hash: str, verified: bool) -> Deferred[Entry | None]:
        """Set or clear the operator's mark of the entry with this info_hash or v1_info_hash
        and recompute its ``verified``; the entry after it, or None when there is none."""

    def user(user_id: str) -> Deferred[tuple[int, int] | None]:
        """A user's accounted (uploaded, downloaded) bytes, or None for a user never seen."""

    def usage_tick(sync_id: str, sender: str, lease: float) -> Deferred[bool]:
        """In one transaction: fold the per-user traffic written by flushes since the last
        batch (only a store made with ``usage_sync`` keeps it) into a new batch with this
        ``sync_id``, and take or renew for ``sender`` the lease of the one process that sends
        (trackers may share the database) for ``lease`` seconds. Fires with True when
        ``sender`` holds the lease."""

    def usage_release(sender: str) -> Deferred[None]:
        """``sender`` stops: its lease ends now."""

    def usage_waiting(limit: int) -> Deferred[list[tuple[int, str, str]]]:
        """Up to ``limit`` batches not sent yet and not set aside, oldest first: (id, sync_id,
        deltas JSON)."""

    def usage_done(batch: int, status: int | None) -> Deferred[None]:
        """The hub took batch ``batch`` (``status`` None: it is dropped) or refused it for good
        (a 4xx ``status``: kept aside, never sent again)."""

    def watch(listener: IRegistryListener) -> None:
        """Tell ``listener`` about writes of other processes, from now until close()."""
