"""What ``weightless get WHAT`` names: a v2 or v1 info hash, a magnet link,
``PUBLISHER/NAME[@VERSION]`` or ``NAME[@VERSION]`` (an entry's whole name too), resolved through
the registry."""

from __future__ import annotations

import re
from dataclasses import dataclass

import libtorrent as lt

from weightless.client.errors import ClientError
from weightless.client.registry import Entry, Registry
from weightless.wire.repo import (
    NoMatch,
    Page,
    ResolveError,
    choose,
    confirm,
    confirmations,
    explain,
    parse_reference,
    searches,
)

_HEX = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Target:
    """A torrent to fetch: its hashes (hex, lowercase) and its registry entry, if any."""

    info_hash: str | None  # v2, 64 hex
    v1_info_hash: str | None  # 40 hex
    entry: Entry | None
    name: str | None

    @property
    def key(self) -> str:
        """The hash the registry API is asked with."""
        if self.entry is not None:
            return str(self.entry["info_hash"])
        return self.info_hash or self.v1_info_hash or ""


def _from_entry(entry: Entry) -> Target:
    key = str(entry["info_hash"]).lower()
    v1 = entry.get("v1_info_hash")
    if len(key) == 40:
        return Target(None, key, entry, entry.get("name"))
    return Target(key, str(v1).lower() if v1 else None, entry, entry.get("name"))


def resolve(registry: Registry, what: str) -> Target:
    """Raises `ClientError` when nothing in the registry matches, when entries of several
    publishers have the name, or for a malformed magnet link."""
    what = what.strip()
    if _HEX.fullmatch(what):
        entry = registry.entry(what.lower())
        if entry is None:
            raise ClientError(
                f"no registry entry at {registry.tracker.url} has the info hash {what}"
            )
        return _from_entry(entry)
    if what.startswith("magnet:"):
        return _magnet(registry, what)
    return _from_entry(_named(registry, what))


def _named(registry: Registry, what: str) -> Entry:
    """``PUBLISHER/NAME[@VERSION]`` or ``NAME[@VERSION]`` by the registry's one rule
    (`weightless.wire.repo`): the newest entry of the repository, or the given version."""
    ref = parse_reference(what)
    found: list[Entry] = []
    pages: list[Page] = []
    for params in searches(ref):
        page = registry.search_by(params)
        found.extend(page.entries)
        pages.append(Page(params, page.total, len(page.entries)))
    try:
        chosen = dict(choose(ref, found))
        for wanted in confirmations(ref, chosen, pages):
            confirm(ref, wanted, registry.search_by(wanted.params).total)
        return chosen
    except NoMatch as e:
        raise ClientError(
            f"{explain(ref, e, pages)} at {registry.tracker.url} "
            "(names match exactly; `weightless search` finds by substring)"
        ) from None
    except ResolveError as e:
        raise ClientError(str(e)) from None


def _magnet(registry: Registry, uri: str) -> Target:
    try:
        params = lt.parse_magnet_uri(uri)
    except RuntimeError as e:
        raise ClientError(f"bad magnet link: {e}") from None
    hashes = params.info_hashes
    v2 = hashes.v2.to_bytes().hex() if hashes.has_v2() else None
    v1 = hashes.v1.to_bytes().hex() if hashes.has_v1() else None
    if v1 is None and v2 is None:
        raise ClientError("the magnet link has no info hash (xt=urn:btih:... or urn:btmh:1220...)")
    for digest in (v2, v1):
        entry = registry.entry(digest) if digest else None
        if entry is not None:
            target = _from_entry(entry)
            if (v2 and target.info_hash and v2 != target.info_hash) or (
                v1 and target.v1_info_hash and v1 != target.v1_info_hash
            ):
                raise ClientError("the magnet link's v1 and v2 hashes belong to different entries")
            return target
    # not registered: the metadata can still come from peers of this tracker (BEP 9)
    return Target(v2, v1, None, params.name or None)
