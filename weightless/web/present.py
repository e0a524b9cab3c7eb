"""What the HTML pages show, computed from registry entries: sizes in units, the file tree of a
torrent, the v1-only magnet link, repository links, dates and the `weightless get` commands. Pure:
text and numbers in, text out."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from weightless.torrent.magnet import magnet_uri
from weightless.wire import route
from weightless.wire.repo import Reference, parse_reference

_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253})|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?")


@dataclass
class Folder:
    """A folder of a torrent's file tree: its size is the sum of everything under it."""

    name: str
    size: int = 0
    count: int = 0  # files under it, at any depth
    folders: dict[str, Folder] = field(default_factory=dict)
    files: list[tuple[str, int]] = field(default_factory=list)  # (name, length)

    def sorted_folders(self) -> list[Folder]:
        return sorted(self.folders.values(), key=lambda f: f.name.casefold())

    def sorted_files(self) -> list[tuple[str, int]]:
        return sorted(self.files, key=lambda f: f[0].casefold())


def file_tree(files: Iterable[Mapping[str, Any]]) -> Folder:
    """The ``files`` of a /meta object (``path`` joined with ``/``, ``length`` in bytes) as
    nested folders, each with its total size and file count."""
    root = Folder("")
    for item in files:
        parts = [p for p in str(item["path"]).split("/") if p]
        length = int(item["length"])
        if not parts:
            continue
        node = root
        node.size += length
        node.count += 1
        for part in parts[:-1]:
            node = node.folders.setdefault(part, Folder(part))
            node.size += length
            node.count += 1
        node.files.append((parts[-1], length))
    return root


def _hashes(entry: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(v2, v1) hex hashes of a registry entry, None where it has none."""
    info_hash: str = entry["info_hash"]
    v1_hash = entry.get("v1_info_hash") or (info_hash if len(info_hash) == 40 else None)
    return (info_hash if len(info_hash) == 64 else None), v1_hash


def v1_magnet(entry: Mapping[str, Any], announce: str) -> str | None:
    """The magnet link with the v1 hash alone, for clients that refuse ``urn:btmh``
    (rtorrent); None for an entry with no v1 hash, or when it would equal the entry's own
    ``magnet`` (a v1-only entry)."""
    _, v1_hash = _hashes(entry)
    if not v1_hash or len(entry["info_hash"]) == 40:
        return None
    return magnet_uri(entry["name"], None, v1_hash, [announce])


def get_command(entry: Mapping[str, Any], base_url: str) -> str:
    """The `weightless get` command that fetches this entry from this tracker."""
    return route.get_command(entry["info_hash"], base_url)


def base_url(host: str | None, secure: bool, fallback: str) -> str:
    """``scheme://host[:port]`` of this tracker as the browser reached it: ``host`` is the
    Host header (or a trusted proxy's X-Forwarded-Host); ``fallback`` when it is missing or
    is not a plain host name or address with an optional port."""
    scheme = "https" if secure else "http"
    if host is None or not _HOST.fullmatch(host):
        host = fallback
    return f"{scheme}://{host}"


def tag_list(tags: str | None) -> list[str]:
    """The tags of a comma-separated ``tags`` field, trimmed, empty ones and repeats dropped."""
    seen: list[str] = []
    for tag in (tags or "").split(","):
        tag = tag.strip()
        if tag and tag not in seen:
            seen.append(tag)
    return seen


# where clients announce with a passkey: the form they derive a scrape URL from (``/scrape``
# for the last segment); ``/announce/{passkey}`` gives them none (weightless.wire.route)
PASSKEY_ANNOUNCE = "/YOUR_PASSKEY/announce"


def repo_url(entry: Mapping[str, Any]) -> str | None:
    """``/repos/{publisher}/{name}``, the page of the entry's repository (each part
    percent-encoded; a ``/`` in the name kept); None for an entry without a publisher."""
    publisher = entry.get("publisher")
    if not publisher:
        return None
    return f"/repos/{quote(publisher, safe='')}/{quote(entry['name'], safe='/')}"


def file_get_command(
    entry: Mapping[str, Any], files: Sequence[Mapping[str, Any]], base_url: str
) -> str | None:
    """The `weightless get` command that fetches one file of a /meta ``files`` list (a
    ``config.json`` when there is one, else the first file); None for a single-file torrent."""
    if len(files) < 2:
        return None
    paths = [str(f["path"]) for f in files]
    chosen = next((p for p in paths if p.rsplit("/", 1)[-1] == "config.json"), paths[0])
    return route.get_command(entry["info_hash"], base_url, [chosen])


def repo_get_command(newest: Mapping[str, Any], base_url: str) -> str:
    """The `weightless get PUBLISHER/NAME` command (the newest version, ``newest``), quoted
    for a shell; the newest entry's hash instead when ``PUBLISHER/NAME`` would read back as
    another reference (`weightless.wire.repo`): a ``/`` in the publisher, a name ending in
    ``@`` and a VERSION, space at either end."""
    publisher, name = str(newest["publisher"]), str(newest["name"])
    what = f"{publisher}/{name}"
    if what.strip() != what or parse_reference(what) != Reference(publisher, name, None, what):
        return get_command(newest, base_url)
    return route.get_command(shlex.quote(what), base_url)


def when(created_at: str | None) -> str:
    """An entry's ``created_at`` (RFC 3339 UTC) as people read it: ``2026-12-07 21:04 UTC``."""
    if not created_at:
        return ""
    day, _, clock = created_at.partition("T")
    return f"{day} {clock[:5]} UTC" if clock else day
