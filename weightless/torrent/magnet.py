"""Magnet links (BEP 9, with BEP 52's ``urn:btmh`` for v2), the one builder for every place that
shows or prints one: the `weightless` command's output and the registry's web pages.

Pure: text in, text out. The form is the registry's:
``magnet:?xt=urn:btih:{v1}&xt=urn:btmh:1220{v2}&dn={name}&tr={tracker}...``, each value
form-encoded exactly as a browser's ``URLSearchParams.toString()`` writes it (a space is ``+``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_HEX40 = re.compile(r"[0-9a-fA-F]{40}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def form_encode(text: str) -> str:
    """application/x-www-form-urlencoded exactly as URLSearchParams.toString() writes it."""
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char.isascii() and (char.isalnum() or char in "*-._"):
            out.append(char)
        else:
            out.append("+" if byte == 0x20 else f"%{byte:02X}")
    return "".join(out)


def magnet_uri(
    name: str,
    v2_info_hash_hex: str | None,
    v1_info_hash_hex: str | None,
    trackers: Sequence[str],
) -> str:
    """magnet:?xt=urn:btih:{v1}&xt=urn:btmh:1220{v2}&dn={name}&tr={tracker}... (spec format):
    the v1 ``xt`` when there is a v1 hash, the v2 one when there is a v2 hash, hashes in
    lower case. ValueError for a hash that is not hex of its length, or for neither hash."""
    params = []
    if v1_info_hash_hex is not None:
        if not _HEX40.fullmatch(v1_info_hash_hex):
            raise ValueError("v1 info hash must be 40 hex characters")
        params.append(f"xt=urn:btih:{v1_info_hash_hex.lower()}")
    if v2_info_hash_hex is not None:
        if not _HEX64.fullmatch(v2_info_hash_hex):
            raise ValueError("v2 info hash must be 64 hex characters")
        params.append(f"xt=urn:btmh:1220{v2_info_hash_hex.lower()}")
    if not params:
        raise ValueError("a magnet link needs a v1 or a v2 info hash")
    params.append(f"dn={form_encode(name)}")
    params.extend(f"tr={form_encode(tracker)}" for tracker in trackers)
    return "magnet:?" + "&".join(params)


def entry_magnet(
    name: str, info_hash: str, v1_info_hash: str | None, trackers: Sequence[str]
) -> str:
    """The magnet link of a registry entry, keyed by ``info_hash`` (64 hex v2, or 40 hex for a
    v1-only torrent) with its ``v1_info_hash`` when it is a hybrid: ``btih`` and ``btmh`` as
    the entry has them (a v1-only entry gets no ``btmh``, a v2-only one no ``btih``)."""
    if len(info_hash) == 40:
        return magnet_uri(name, None, info_hash, trackers)
    return magnet_uri(name, info_hash, v1_info_hash, trackers)
