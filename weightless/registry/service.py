"""The registry's rules, with no HTTP in them: who may write (the operator's registry key, a
publisher's token), register an entry (a JSON submission or a raw .torrent upload), check its
signature against the publisher's trusted keys (a publisher with keys signs every entry of its
name), the operator's mark, search, get, repositories and their versions, model cards, the /meta
view of a stored file, takedowns, publishers' keys and users' traffic, with live swarm counts
and the magnet link on every entry it answers.

`RegistryService` takes its collaborators when built (the store, the live registry, what times
the store's answers, what runs a long parse off the reactor) and answers with plain records: a
RegistryEntry as a dict, a list of keys, a pair of numbers. What it refuses, it refuses with a
`RegistryError` whose message can go to a client as is (or with `Invalid`, the checks' own
error); the adapters (``weightless.web.registry_api``, ``weightless.web.pages``) turn those into
status codes and bodies."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from weightless.registry.entries import (
    Entry,
    Invalid,
    Submission,
    check_key,
    check_readable,
    check_signature,
    check_text,
    entry_json,
    parse_hash,
    parse_json_body,
    parse_upload,
    stored_meta,
)
from weightless.registry.live import LiveRegistry
from weightless.registry.search import BOOLEANS, MAX_LIMIT, Search, parse_search
from weightless.registry.store import Blocked, IStore, NotOwner, StoreUnavailable, Unsigned
from weightless.registry.store import Conflict as StoreConflict
from weightless.torrent.metainfo import TorrentError
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.catalog import wire_hashes
from weightless.wire.card import MAX_CARD_BYTES
from weightless.wire.passkey import token_publisher, valid_user_id
from weightless.wire.repo import (
    Ambiguous,
    NoMatch,
    Page,
    choose,
    confirm,
    confirmations,
    explain,
    parse_reference,
    searches,
)

__all__ = [
    "ANYONE",
    "MAX_CARD",
    "MAX_TRUSTED_KEYS",
    "OPERATOR",
    "STORE_TIMEOUT",
    "AmbiguousName",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "RegistryError",
    "RegistryService",
    "Unauthorized",
    "Unavailable",
    "Unreadable",
    "Writer",
    "parse_trusted_keys",
]

T = TypeVar("T")
STORE_TIMEOUT = 5.0  # seconds the store has to answer before the registry is Unavailable
MAX_TRUSTED_KEYS = 100  # per publisher
MAX_CARD = MAX_CARD_BYTES  # bytes of a model card (Markdown, UTF-8), as the command checks it
_NOT_OWNER = "a token of {} may only change its own entries"

# A RegistryEntry: the spec's keys, live counts included (``entries.entry_json``).
EntryView = dict[str, Any]
Runner = Callable[..., Deferred[Any]]


class RegistryError(Exception):
    """What the registry refuses; the message says why, in words a client can be shown.
    (Bad input is `Invalid`, raised by the checks of ``weightless.registry.entries``.)"""


class Unauthorized(RegistryError):
    """A write without the operator's registry key, or with a wrong one."""


class Forbidden(RegistryError):
    """A write the key given may not make: a publisher's token on another publisher's entry
    or on the operator's endpoints, or an unsigned entry of a publisher with trusted keys."""


class _NotOwner(Forbidden):
    """The store's NotOwner: the entry is another publisher's (the caller names the token)."""


class AmbiguousName(RegistryError):
    """A ``NAME`` that entries of several publishers have (the message lists them)."""


class NotFound(RegistryError):
    """No such entry, stored file or user."""


class Conflict(RegistryError):
    """A write the registry's state refuses: a blocked hash, or one of another entry."""


class Unreadable(RegistryError):
    """A stored .torrent that cannot be parsed any more (the registry's own fault)."""


class Unavailable(RegistryError):
    """The database cannot be reached or did not answer in time. The message is the cause,
    for the operator's log; a client is told only to try again later."""


@dataclass(frozen=True)
class Writer:
    """Who makes a write: the operator (the registry key), a publisher (its token: it may
    write only entries of ``publisher``), or anyone (no registry key is set)."""

    operator: bool = False
    publisher: str | None = None


OPERATOR = Writer(operator=True)
ANYONE = Writer()


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
        self._renders = defer.DeferredSemaphore(1)  # model cards rendered at once

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

    def _view(self, entry: Entry, trackers: Sequence[str] = ()) -> EntryView:
        entry.completions = self.live.completions(entry.info_hash, entry.completions)
        seeders, leechers = self.live.counts(entry.info_hash)
        return entry_json(entry, seeders, leechers, trackers)

    # -- who may write

    def authorize(self, given: bytes | None) -> Writer:
        """Who ``given`` (the X-Weightless-Key) is: `OPERATOR` for the registry key, a
        publisher for its token (``weightless.wire.passkey.publisher_token``), `ANYONE` when
        no registry key is set; `Unauthorized` for anything else. Constant time."""
        if self.registry_key is None:
            return ANYONE
        given = given or b""
        if hmac.compare_digest(given, self.registry_key):
            return OPERATOR
        publisher = token_publisher(self.registry_key, given)
        if publisher is None:
            raise Unauthorized("missing or wrong registry key")
        return Writer(publisher=publisher)

    @staticmethod
    def require_operator(writer: Writer) -> None:
        """`Forbidden` for a publisher's token: trust, the operator's mark and users' traffic
        take the registry key."""
        if writer.publisher is not None:
            raise Forbidden("this needs the operator's registry key, not a publisher token")

    @staticmethod
    def _owns(writer: Writer, entry: Entry | None) -> None:
        """`Forbidden` when a publisher's token touches an entry of another publisher (or, with
        ``entry`` None, one that does not exist)."""
        if writer.publisher is not None and (entry is None or entry.publisher != writer.publisher):
            raise Forbidden(_NOT_OWNER.format(writer.publisher))

    # -- reads

    async def get(self, info_hash: str | None, trackers: Sequence[str] = ()) -> EntryView:
        """The entry with this hash (v2 or v1, any case), live counts included; its ``magnet``
        announces to ``trackers`` (announce URLs)."""
        entry = await self._guard(self.store.entry(parse_hash(info_hash)))
        if entry is None:
            raise NotFound("info_hash not found")
        await self.live.fresh([entry.info_hash])
        return self._view(entry, trackers)

    async def search(
        self, query: Search, trackers: Sequence[str] = ()
    ) -> tuple[list[EntryView], int]:
        """One page of entries and how many match in all."""
        entries, total = await self._guard(self.store.search(query))
        await self.live.fresh([e.info_hash for e in entries])
        return [self._view(e, trackers) for e in entries], total

    async def versions(
        self, publisher: str, name: str, trackers: Sequence[str] = ()
    ) -> list[EntryView]:
        """A repository's entries (this ``publisher`` and ``name``, exactly), newest
        (``created_at``) first; at most MAX_LIMIT (100) of them; [] for none."""
        return (await self.repository(publisher, name, trackers))[0]

    async def repository(
        self, publisher: str, name: str, trackers: Sequence[str] = ()
    ) -> tuple[list[EntryView], int]:
        """`versions`, and how many entries the repository has in all. An empty publisher
        or name is no repository (a search would take it as no filter at all)."""
        publisher, name = check_text(publisher, "publisher"), check_text(name, "name")
        if not publisher or not name:
            return [], 0
        query = Search(publisher=publisher, name=name, limit=MAX_LIMIT)
        return await self.search(query, trackers)

    async def resolve(self, what: str, trackers: Sequence[str] = ()) -> EntryView:
        """The entry ``PUBLISHER/NAME[@VERSION]`` or ``NAME[@VERSION]`` names
        (``weightless.wire.repo``: the newest, or the one of that version label or hash prefix
        of 8+ hex). `NotFound` when none matches, `AmbiguousName` (listing them) when ``NAME``
        alone matches entries of several publishers."""
        ref = parse_reference(check_text(what, "name"))
        if not ref.name:
            raise NotFound("no registry entry has an empty name")
        found: list[EntryView] = []
        pages: list[Page] = []
        for params in searches(ref):
            try:
                query = parse_search(params)
            except Invalid:
                continue  # a part that cannot be a name or version matches nothing
            listed, total = await self.search(query, trackers)
            found += listed
            pages.append(Page(params, total, len(listed)))
        try:
            chosen = dict(choose(ref, found))
            for wanted in confirmations(ref, chosen, pages):
                _, total = await self._guard(self.store.search(parse_search(wanted.params)))
                confirm(ref, wanted, total)
            return chosen
        except NoMatch as e:
            raise NotFound(str(explain(ref, e, pages))) from None
        except Ambiguous as e:
            raise AmbiguousName(str(e)) from None

    async def card(self, info_hash: str | None) -> str:
        """The model card (Markdown) of the entry with this hash; `NotFound` when it has none."""
        text = await self._guard(self.store.card(parse_hash(info_hash)))
        if text is None:
            raise NotFound("no model card for this info_hash")
        return text

    async def card_html(
        self, info_hash: str | None, renderer: str, render: Callable[[str], str]
    ) -> str:
        """The entry's model card as ``render`` (named ``renderer``) makes it HTML: the HTML
        kept with the card, or, the first time it is asked for after each write of the card,
        rendered off the reactor and kept, so that page views never render a card again
        (256 KiB of Markdown takes seconds). `NotFound` when the entry has no card."""
        key = parse_hash(info_hash)
        found = await self._guard(self.store.card_view(key, renderer))
        if found is None:
            raise NotFound("no model card for this info_hash")
        html = found[1]
        if html is None:
            # one render at a time in this process (a render holds the GIL: the reactor keeps
            # its share), and views waiting for the same card take the HTML the first kept
            run = self._renders.run
            html = await run(lambda: Deferred.fromCoroutine(self._render(key, renderer, render)))
        return html

    async def _render(self, key: str, renderer: str, render: Callable[[str], str]) -> str:
        found = await self._guard(self.store.card_view(key, renderer))
        if found is None:
            raise NotFound("no model card for this info_hash")
        text, html = found
        if html is None:
            html = await self.run_in_thread(render, text)
            await self._guard(self.store.save_card_html(key, text, renderer, html))
        return html

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
        return await self._guard(self.store.trusted_keys(check_readable(publisher, "publisher")))

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

    # -- writes (each by the `Writer` that `authorize` gave)

    async def register_json(self, body: bytes, writer: Writer = ANYONE) -> Entry:
        """Add or update the entry of a JSON submission (``entries.parse_json_body``).
        `Forbidden` for a token on another publisher's entry, or an entry of a publisher with
        trusted keys that none of them signed."""
        return await self._register(await self.run_in_thread(parse_json_body, body), writer)

    async def register_upload(
        self, torrent_data: bytes, fields: Mapping[str, str], writer: Writer = ANYONE
    ) -> Entry:
        """Add or update the entry of a raw .torrent file, with entry fields beside it (the
        same refusals as `register_json`)."""
        submission = await self.run_in_thread(parse_upload, torrent_data, fields)
        return await self._register(submission, writer)

    async def delete(
        self, info_hash: str | None, reason: str, writer: Writer = ANYONE
    ) -> list[str]:
        """Take the entry with this hash down, if any, and block its hashes (or this one);
        the hashes blocked. A publisher's token takes down only its own entries."""
        key = parse_hash(info_hash)
        reason = check_text(reason, "reason")
        try:
            taken = self.store.takedown(key, reason, writer.publisher)
            hashes: list[str] = await self._guard(taken)
        except _NotOwner:  # checked in the store's transaction
            raise Forbidden(_NOT_OWNER.format(writer.publisher)) from None
        self.live.taken_down(hashes)
        return hashes

    async def set_card(self, info_hash: str | None, body: bytes, writer: Writer = ANYONE) -> None:
        """Store the model card (UTF-8 Markdown, at most MAX_CARD bytes) of the entry with this
        hash, replacing any. `NotFound` without the entry; the key rules of `register_json`
        (the entry's publisher's token, or the operator's key for an entry of a publisher with
        trusted keys)."""
        key = parse_hash(info_hash)
        if len(body) > MAX_CARD:
            raise Invalid(f"a model card is at most {MAX_CARD // 1024} KiB")
        try:
            text = check_text(body.decode("utf-8"), "card")
        except UnicodeDecodeError:
            raise Invalid("a model card must be UTF-8 text") from None
        # who owns the entry, and whether its publisher has keys, are checked in the write
        write = self.store.set_card(
            key,
            text,
            owner=writer.publisher,
            signed_namespaces=not writer.operator and writer.publisher is None,
        )

        def keyed(failure: Failure) -> None:
            failure.trap(Unsigned)
            raise Forbidden(
                f"cards of {failure.value}'s entries need its token or the registry key"
            )

        try:
            found = await self._guard(write.addErrback(keyed))
        except _NotOwner:
            raise Forbidden(_NOT_OWNER.format(writer.publisher)) from None
        if not found:
            raise NotFound("info_hash not found")

    async def trust(self, publisher: str, body: bytes, writer: Writer = ANYONE) -> list[str]:
        """Replace the keys trusted for a publisher with those of ``body``
        (`parse_trusted_keys`); the keys now trusted. The operator's (`Forbidden` for a token)."""
        self.require_operator(writer)
        publisher = check_readable(publisher, "publisher")
        keys = parse_trusted_keys(body)
        await self._guard(self.store.set_trusted_keys(publisher, keys))
        return keys

    async def mark(
        self,
        info_hash: str | None,
        verified: str | None,
        writer: Writer = ANYONE,
        trackers: Sequence[str] = (),
    ) -> EntryView:
        """Set (``true``, ``1``) or clear (``false``, ``0``) the operator's mark of an entry;
        the entry after it. The operator's (`Forbidden` for a token)."""
        self.require_operator(writer)
        key = parse_hash(info_hash)
        if verified not in BOOLEANS:
            raise Invalid("verified must be true or false")
        entry = await self._guard(self.store.set_operator_mark(key, BOOLEANS[verified]))
        if entry is None:
            raise NotFound("info_hash not found")
        await self.live.fresh([entry.info_hash])
        return self._view(entry, trackers)

    async def _register(self, submission: Submission, writer: Writer) -> Entry:
        entry = submission.entry
        if writer.publisher is not None:
            if entry.publisher is None:
                entry.publisher = writer.publisher  # a token writes its publisher's entries
            self._owns(writer, entry)
        self._check_writable(entry)
        if submission.signatures:
            await self._sign(submission)
        # who owns a stored entry, and whether its publisher's keys signed it, are checked in
        # the store's write, so that a change of either meanwhile cannot slip in between
        write = self.store.upsert(
            entry,
            submission.torrent_data,
            submission.meta,
            owner=writer.publisher,
            signed_namespaces=not writer.operator,
        )
        try:
            completions = await self._guard(write)
        except _NotOwner:
            raise Forbidden(_NOT_OWNER.format(writer.publisher)) from None
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
    if isinstance(error, NotOwner):
        return Failure(_NotOwner("this entry belongs to another publisher"))
    if isinstance(error, Unsigned):
        return Failure(Forbidden(f"entries of {error} must be signed by one of its keys"))
    return failure


def parse_trusted_keys(body: bytes) -> list[str]:
    """The body of PUT /api/publishers/{publisher}: {"keys": ["<64 hex>", ...]}, sorted and
    without repeats; [] trusts no key. Each must be an Ed25519 public key that
    ``entries.check_key`` takes (not merely 64 hex characters)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise Invalid("invalid JSON body") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise Invalid('the body must be {"keys": ["<64 hex Ed25519 public key>", ...]}')
    keys = data["keys"]
    if len(keys) > MAX_TRUSTED_KEYS:
        raise Invalid(f"at most {MAX_TRUSTED_KEYS} keys per publisher")
    return sorted({check_key(key, f"keys[{i}]") for i, key in enumerate(keys)})
