"""Repositories: ``PUBLISHER/NAME[@VERSION]`` and ``NAME[@VERSION]`` resolved to one registry
entry, the one rule the registry and the `weightless` command both follow.

A repository is the entries with the same ``publisher`` and ``name``. ``PUBLISHER/NAME`` names
its newest entry (``created_at``, RFC 3339 UTC, which sorts as text); ``@VERSION`` a given one:
its ``version`` label, or a prefix of at least 8 hex characters of either info hash. ``NAME``
alone does the same among the entries named NAME when they share one publisher; several
publishers are an error that lists them. An entry whose whole name equals WHAT still matches
(for ``PUBLISHER/NAME``, only when that repository has no entry of the version asked for: a
publisher's name cannot be made ambiguous by registering it as a name).

Pure: entries are RegistryEntry mappings (as the API answers them) in, one entry out. The caller
fetches the candidates with the searches of `searches` (the registry's exact ``name``,
``publisher`` and ``version`` parameters), and, when a search without a publisher matched more
entries than its page holds, asks the searches of `confirmations`: the entries a page left out
may be another publisher's, and a name alone must not resolve to whoever registered the most
entries of it lately."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VERSION = re.compile(r"[A-Za-z0-9._+-]{1,64}")
HASH_PREFIX = re.compile(r"[0-9a-fA-F]{8,64}")
CANDIDATES = 100  # newest entries asked for per search (the registry's largest page)

Entry = Mapping[str, Any]


class ResolveError(ValueError):
    """WHAT names no entry, or several publishers' entries; the message says which."""


class NoMatch(ResolveError):
    """No entry matches."""


class Ambiguous(ResolveError):
    """Entries of several publishers match ``NAME`` (the message lists them)."""


def valid_version(text: str) -> bool:
    """1-64 characters of ``[A-Za-z0-9._+-]``."""
    return VERSION.fullmatch(text) is not None


@dataclass(frozen=True)
class Reference:
    """WHAT taken apart: ``publisher`` (None for ``NAME`` alone), ``name``, ``version`` (None
    for the newest), and ``whole``, WHAT itself (an entry's whole name may equal it)."""

    publisher: str | None
    name: str
    version: str | None
    whole: str


def parse_reference(what: str) -> Reference:
    """``PUBLISHER/NAME@VERSION`` split at the first ``/`` and the last ``@`` (a VERSION has no
    ``@`` nor ``/``); a part that would be empty or a VERSION of other characters leaves WHAT
    whole as the name."""
    base, at, version = what.rpartition("@")
    if not at or not base or not valid_version(version):
        base, version = what, ""
    publisher, slash, name = base.partition("/")
    if not slash or not publisher or not name:
        publisher, name = "", base
    return Reference(publisher or None, name, version or None, what)


def searches(ref: Reference) -> list[dict[str, str]]:
    """The search parameters (``GET /api/registry/search``) whose results hold every candidate
    of ``ref``: its repository (or name) newest first, the exact version label, and entries
    whose whole name is WHAT."""
    base = {"name": ref.name, "sort": "created_at", "limit": str(CANDIDATES)}
    if ref.publisher is not None:
        base["publisher"] = ref.publisher
    found = [base]
    if ref.version is not None:
        found.append({**base, "version": ref.version})
    if ref.whole != ref.name:
        found.append({"name": ref.whole, "sort": "created_at", "limit": str(CANDIDATES)})
    return found


def _newest_first(entry: Entry) -> str:
    # created_at is to the second; among entries of the same second ``max`` keeps the first,
    # and the registry's search (sort=created_at) lists the newest first to the microsecond
    return str(entry.get("created_at") or "")


def matches_version(entry: Entry, version: str) -> bool:
    """``version`` is the entry's label, or a prefix (8+ hex) of either of its hashes."""
    if entry.get("version") == version:
        return True
    if not HASH_PREFIX.fullmatch(version):
        return False
    prefix = version.lower()
    return any(
        str(entry.get(key) or "").startswith(prefix) for key in ("info_hash", "v1_info_hash")
    )


def choose(ref: Reference, entries: Iterable[Entry]) -> Entry:
    """The entry ``ref`` names among ``entries`` (the results of `searches`, repeats allowed).
    `NoMatch` when none does, `Ambiguous` when ``NAME`` alone matches several publishers. For
    ``PUBLISHER/NAME``, entries whose whole name is WHAT count only when the repository has
    none of that version."""
    seen: dict[str, Entry] = {}
    for entry in entries:
        whole = entry.get("name") == ref.whole
        in_repo = entry.get("name") == ref.name and (
            ref.publisher is None or entry.get("publisher") == ref.publisher
        )
        if whole or in_repo:
            seen.setdefault(str(entry.get("info_hash")), entry)
    found: Sequence[Entry] = list(seen.values())
    if ref.version is not None:
        labelled = [
            e for e in found if e.get("name") == ref.whole or matches_version(e, ref.version)
        ]
        found = labelled
    if ref.publisher is not None:
        # PUBLISHER/NAME names that publisher's repository: an entry of another publisher
        # whose whole name is WHAT is taken only when the repository has no such entry, so
        # that nobody can make a publisher's name ambiguous by registering it as a name
        repo = [e for e in found if e.get("name") == ref.name]
        found = repo or found
    if not found:
        wanted = f" at version {ref.version!r}" if ref.version is not None else ""
        raise NoMatch(f"no registry entry is named {_named(ref)}{wanted}")
    publishers = sorted({str(e.get("publisher") or "") for e in found})
    if len(publishers) > 1:
        listed = ", ".join(
            f"{p}/{ref.name}" if p else f"{ref.name} (no publisher)" for p in publishers
        )
        raise Ambiguous(
            f"entries of {len(publishers)} publishers are named {ref.name!r}; name one: {listed}"
        )
    return max(found, key=_newest_first)


@dataclass(frozen=True)
class Page:
    """What one search of `searches` answered: its parameters, how many entries match in all
    (``X-Total-Count``) and how many it listed."""

    params: Mapping[str, str]
    total: int
    listed: int


def confirmations(ref: Reference, chosen: Entry, pages: Iterable[Page]) -> list[Page]:
    """The searches that prove no other publisher's entry was left out of a page: each search
    that names no publisher and listed fewer entries than match (but the repository's own
    search when ``@VERSION`` can only be a label, whose entries the search by version lists),
    narrowed to the chosen entry's
    publisher (one entry a page), with the total it must answer (every entry of the first is
    that publisher's). `Ambiguous` when such a search exists and the chosen entry has no
    publisher (a search cannot ask for entries without one)."""
    wanted: list[Page] = []
    for page in pages:
        if page.total <= page.listed or page.params.get("publisher"):
            continue
        if (
            _labels_only(ref)
            and page.params.get("name") == ref.name
            and "version" not in page.params
        ):
            continue  # a label's entries are all in the search by version
        publisher = chosen.get("publisher")
        if not publisher:
            raise crowded(ref)
        narrowed = {**page.params, "publisher": str(publisher), "limit": "1"}
        wanted.append(Page(narrowed, page.total, 1))
    return wanted


def explain(ref: Reference, error: NoMatch, pages: Iterable[Page]) -> NoMatch:
    """``error``, saying where a hash prefix was looked for when a search listed fewer entries
    than match (an older entry's prefix is not among the candidates)."""
    if ref.version is None or _labels_only(ref) or all(p.total <= p.listed for p in pages):
        return error
    return NoMatch(
        f"{error} among the newest {CANDIDATES} entries of that name; give the whole info hash"
    )


def _labels_only(ref: Reference) -> bool:
    """``@VERSION`` that can only be a label (not hex, so no hash prefix)."""
    return ref.version is not None and HASH_PREFIX.fullmatch(ref.version) is None


def confirm(ref: Reference, wanted: Page, total: int) -> None:
    """`Ambiguous` unless the search of ``wanted`` (from `confirmations`) matched ``total``
    entries, as many as the search it narrows."""
    if total != wanted.total:
        raise crowded(ref)


def crowded(ref: Reference) -> Ambiguous:
    """The error for a name whose entries, beyond the newest CANDIDATES, are of several
    publishers (or of none)."""
    return Ambiguous(
        f"more than {CANDIDATES} registry entries are named {_named(ref)}, not all of one "
        "publisher; name one as PUBLISHER/NAME or give an info hash"
    )


def _named(ref: Reference) -> str:
    name = f"{ref.publisher}/{ref.name}" if ref.publisher is not None else ref.name
    return repr(name)
