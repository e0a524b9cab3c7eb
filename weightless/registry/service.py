"""The registry's rules, with no HTTP in them: register an entry (a JSON submission or a raw
.torrent upload), check its signature against the publisher's trusted keys, the operator's
mark, search, get, the /meta view of a stored file, takedowns, publishers' keys and users'
traffic, with live swarm counts on every entry it answers.

`RegistryService` takes its collaborators when built (the store, the live registry, what times
the store's answers, what runs a long parse off the reactor) and answers with plain records: a
RegistryEntry as a dict, a list of keys, a pair of numbers. What it refuses, it refuses with a
`RegistryError` whose message can go to a client as is (or with `Invalid`, the checks' own
error); the adapters (``weightless.web.registry_api``, ``weightless.web.pages``) turn those into
status codes and bodies."""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from weightless.registry.entries import (
    Entry,
    Invalid,
    Submission,
    check_signature,
    check_text,
    entry_json,
    parse_hash,
    parse_json_body,
    parse_upload,
    stored_meta,
)
from weightless.registry.live import LiveRegistry
from weightless.registry.search import BOOLEANS, Search
from weightless.registry.store import Blocked, IStore, StoreUnavailable
from weightless.registry.store import Conflict as StoreConflict
from weightless.torrent.metainfo import TorrentError
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.catalog import wire_hashes
from weightless.wire.passkey import valid_user_id

__all__ = [
    "MAX_TRUSTED_KEYS",
    "STORE_TIMEOUT",
    "Conflict",
    "Invalid",
    "NotFound",
    "RegistryError",
    "RegistryService",
    "Unauthorized",
    "Unavailable",
    "Unreadable",
    "parse_trusted_keys",
]

T = TypeVar("T")
STORE_TIMEOUT = 5.0  # seconds the store has to answer before the registry is Unavailable
MAX_TRUSTED_KEYS = 100  # per publisher
_KEY = re.compile(r"[0-9a-fA-F]{64}")

# A RegistryEntry: the spec's keys, live counts included (``entries.entry_json``).
EntryView = dict[str, Any]
Runner = Callable[..., Deferred[Any]]


class RegistryError(Exception):
    """What the registry refuses; the message says why, in words a client can be shown.
    (Bad input is `Invalid`, raised by the checks of ``weightless.registry.entries``.)"""


class Unauthorized(RegistryError):
    """A write without the operator's registry key, or with a wrong one."""


class NotFound(RegistryError):
    """No such entry, stored file or user."""


class Conflict(RegistryError):
    """A write the registry's state refuses: a blocked hash, or one of another entry."""


class Unreadable(RegistryError):
    """A stored .torrent that cannot be parsed any more (the registry's own fault)."""


class Unavailable(RegistryError):
    """The database cannot be reached or did not answer in time. The message is the cause,
    for the operator's log; a client is told only to try again later."""


class RegistryService:
    def __init__(
        self,
        store: IStore,
        live: LiveRegistry,
        pending: PendingWrites,
        clock: IReactorTime,
        run_in_thread: Runner,
        timeout: float = STORE_TIMEOUT,
        registry_key: str | None = None,
    ) -> None:
        """``clock`` times the store's answers (``timeout`` seconds each); ``run_in_thread``
        runs parses of submitted files (up to 16 MiB, or 100,000 files) away from the reactor,
        so that they never stall the announces; ``registry_key``, when set, is what every
        write must present."""
        self.store = store
        self.live = live
        self.pending = pending
        self.clock = clock
        self.run_in_thread = run_in_thread
        self.timeout = timeout
        self.registry_key = registry_key.encode("utf-8") if registry_key else None

    # -- helpers

    def _guard(self, d: Deferred[T]) -> Deferred[T]:
        """The store's answer, or `Unavailable` when none comes in time (cancelling a store's
        Deferred leaves its query to finish on its own: IStore) or the database is gone; the
        store's refusals of a write as `Conflict`."""
        return d.addTimeout(self.timeout, self.clock).addErrback(_translate)

    def _check_writable(self, entry: Entry) -> None:
        """`Conflict` for a blocked hash, or one that already names another entry's swarm."""
        catalog = self.live.catalog
        for h in entry.hashes():
            for wire in wire_hashes(h):
                if wire in catalog.blocked:
                    raise Conflict(f"{h} is blocked")
                found = catalog.by_wire.get(wire)
                if found is not None and found[1].info_hash != entry.info_hash:
                    raise Conflict(f"{h} already belongs to entry {found[1].info_hash}")

    def _view(self, entry: Entry) -> EntryView:
        entry.completions = self.live.completions(entry.info_hash, entry.completions)
        seeders, leechers = self.live.counts(entry.info_hash)
        return entry_json(entry, seeders, leechers)

    # -- who may write

    def authorize(self, given: bytes | None) -> None:
        """`Unauthorized` unless ``given`` is the registry key (or no key is set)."""
        if self.registry_key is None:
            return
        if not hmac.compare_digest(given or b"", self.registry_key):
            raise Unauthorized("missing or wrong registry key")

    # -- reads

    async def get(self, info_hash: str | None) -> EntryView:
        """The entry with this hash (v2 or v1, any case), live counts included."""
        entry = await self._guard(self.store.entry(parse_hash(info_hash)))
        if entry is None:
            raise NotFound("info_hash not found")
        await self.live.fresh([entry.info_hash])
        return self._view(entry)

    async def search(self, query: Search) -> tuple[list[EntryView], int]:
        """One page of entries and how many match in all."""
        entries, total = await self._guard(self.store.search(query))
        await self.live.fresh([e.info_hash for e in entries])
        return [self._view(e) for e in entries], total

    async def metadata(self, info_hash: str | None) -> str:
        """The /meta document of the stored .torrent (JSON text: name, piece_length,
        piece_count, total_size, files). A lookup: the view was computed when the file was
        stored (or, for a file stored before that, at its first /meta, off the reactor, and
        kept). `NotFound` when no file is stored."""
        key = parse_hash(info_hash)
        found = await self._guard(self.store.meta(key))
        if found is None:
            raise NotFound("no torrent file stored for this info_hash")
        meta, data = found
        if meta is None:
            assert data is not None
            try:
                meta = await self.run_in_thread(stored_meta, data)
            except TorrentError as e:
                raise Unreadable(f"the stored torrent cannot be read: {e}") from None
            await self._guard(self.store.save_meta(key, meta))
        return meta

    async def torrent(self, info_hash: str | None) -> tuple[str, bytes]:
        """(the entry's name, the stored .torrent file); `NotFound` when none is stored."""
        found = await self._guard(self.store.torrent(parse_hash(info_hash)))
        if found is None:
            raise NotFound("no torrent file stored for this info_hash")
        return found

    async def publisher_keys(self, publisher: str) -> list[str]:
        """The public keys (64 hex, sorted) trusted for a publisher; [] for none."""
        return await self._guard(self.store.trusted_keys(check_text(publisher, "publisher")))

    async def user(self, user_id: str) -> tuple[int, int]:
        """A user's (uploaded, downloaded) bytes: those stored plus those not written yet."""
        if not valid_user_id(user_id):
            raise NotFound("unknown user")
        stored = await self._guard(self.store.user(user_id))
        queued = self.pending.traffic.get(user_id)
        if stored is None and queued is None:
            raise NotFound("unknown user")
        up, down = stored or (0, 0)
        if queued is not None:
            up, down = up + queued[0], down + queued[1]
        return up, down

    # -- writes (each after `authorize`)

    async def register_json(self, body: bytes) -> Entry:
        """Add or update the entry of a JSON submission (``entries.parse_json_body``)."""
        return await self._register(await self.run_in_thread(parse_json_body, body))

    async def register_upload(self, torrent_data: bytes, fields: Mapping[str, str]) -> Entry:
        """Add or update the entry of a raw .torrent file, with entry fields beside it."""
        return await self._register(await self.run_in_thread(parse_upload, torrent_data, fields))

    async def delete(self, info_hash: str | None, reason: str) -> list[str]:
        """Take the entry with this hash down, if any, and block its hashes (or this one);
        the hashes blocked."""
        key = parse_hash(info_hash)
        reason = check_text(reason, "reason")
        hashes: list[str] = await self._guard(self.store.takedown(key, reason))
        self.live.taken_down(hashes)
        return hashes

    async def trust(self, publisher: str, body: bytes) -> list[str]:
        """Replace the keys trusted for a publisher with those of ``body``
        (`parse_trusted_keys`); the keys now trusted."""
        publisher = check_text(publisher, "publisher")
        keys = parse_trusted_keys(body)
        await self._guard(self.store.set_trusted_keys(publisher, keys))
        return keys

    async def mark(self, info_hash: str | None, verified: str | None) -> EntryView:
        """Set (``true``, ``1``) or clear (``false``, ``0``) the operator's mark of an entry;
        the entry after it."""
        key = parse_hash(info_hash)
        if verified not in BOOLEANS:
            raise Invalid("verified must be true or false")
        entry = await self._guard(self.store.set_operator_mark(key, BOOLEANS[verified]))
        if entry is None:
            raise NotFound("info_hash not found")
        await self.live.fresh([entry.info_hash])
        return self._view(entry)

    async def _register(self, submission: Submission) -> Entry:
        entry = submission.entry
        self._check_writable(entry)
        if submission.signatures:
            await self._sign(submission)
        completions = await self._guard(
            self.store.upsert(entry, submission.torrent_data, submission.meta)
        )
        self.live.upserted(entry.info_hash, entry.v1_info_hash, completions)
        return entry

    async def _sign(self, submission: Submission) -> None:
        """Give the entry its signature, checked against all its hashes: those of the file,
        or the ones posted with the stored v1_info_hash added (an entry keyed by its v2 hash
        keeps its v1 hash across posts, and the signature must cover it). Of a file's several
        signatures, the first by a key trusted for the publisher, else the first."""
        entry = submission.entry
        posted_v2 = submission.torrent_data is None and len(entry.info_hash) == 64
        if posted_v2 and entry.v1_info_hash is None:
            stored = await self._guard(self.store.entry(entry.info_hash))
            if stored is not None and stored.info_hash == entry.info_hash:
                entry.v1_info_hash = stored.v1_info_hash
        chosen = submission.signatures[0]
        if len(submission.signatures) > 1 and entry.publisher:
            trusted: list[str] = await self._guard(self.store.trusted_keys(entry.publisher))
            chosen = next((s for s in submission.signatures if s.public_key_hex in trusted), chosen)
        check_signature(entry, chosen)


def _translate(failure: Failure) -> Failure:
    """The store's failures as the registry's errors; any other passes through."""
    error = failure.value
    if isinstance(error, StoreUnavailable | defer.TimeoutError):
        return Failure(Unavailable(str(error)))
    if isinstance(error, Blocked):
        return Failure(Conflict(f"{error} is blocked"))
    if isinstance(error, StoreConflict):
        return Failure(Conflict("a hash of this entry belongs to another"))
    return failure


def parse_trusted_keys(body: bytes) -> list[str]:
    """The body of PUT /api/publishers/{publisher}: {"keys": ["<64 hex>", ...]}, sorted and
    without repeats; [] trusts no key."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise Invalid("invalid JSON body") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise Invalid('the body must be {"keys": ["<64 hex Ed25519 public key>", ...]}')
    keys = data["keys"]
    if len(keys) > MAX_TRUSTED_KEYS:
        raise Invalid(f"at most {MAX_TRUSTED_KEYS} keys per publisher")
    for key in keys:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise Invalid("each key must be 64 hex characters (an Ed25519 public key)")
    return sorted({key.lower() for key in keys})
