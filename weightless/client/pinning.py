"""What a user asked for pins what ``get`` may use: a v2 or v1 hash, or a magnet link's
hashes, must be the hashes of the .torrent (or the peers' metadata) that is downloaded, and of
the registry entry that was looked up. A registry that answers with another entry (marked
verified or not) and serves that entry's .torrent is refused before any data is written."""

from __future__ import annotations

import re
from dataclasses import dataclass

import libtorrent as lt

from weightless.client.errors import ClientError

_HEX = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Pins:
    """Hashes (lowercase hex) the data must have; None where the request named none."""

    v2: str | None
    v1: str | None

    def __bool__(self) -> bool:
        return bool(self.v2 or self.v1)

    @property
    def key(self) -> str:
        """The hash to look the torrent up by (v2 first)."""
        return self.v2 or self.v1 or ""

    def refusal(self, v2: str | None, v1: str | None) -> str | None:
        """Why a torrent of hashes (``v2``, ``v1``) is not what was asked for, or None."""
        if self.v2 and self.v2 != v2:
            return f"its v2 info hash is {v2 or 'missing'}, not {self.v2}"
        if self.v1 and self.v1 != v1:
            return f"its v1 info hash is {v1 or 'missing'}, not {self.v1}"
        return None

    def check(self, v2: str | None, v1: str | None, what: str) -> None:
        """`ClientError` (one line, naming ``what``) unless the hashes are the pinned ones."""
        problem = self.refusal(v2, v1)
        if problem is not None:
            raise ClientError(f"refusing {what}: {problem}")


def pins_of(what: str) -> Pins:
    """The hashes ``what`` pins: a 64-hex v2 or 40-hex v1 hash, a magnet link's ``btmh`` and
    ``btih``; none for a name. `ClientError` for a malformed magnet link."""
    what = what.strip()
    if _HEX.fullmatch(what):
        low = what.lower()
        return Pins(low, None) if len(low) == 64 else Pins(None, low)
    if what.startswith("magnet:"):
        try:
            hashes = lt.parse_magnet_uri(what).info_hashes
        except RuntimeError as e:
            raise ClientError(f"bad magnet link: {e}") from None
        return Pins(
            hashes.v2.to_bytes().hex() if hashes.has_v2() else None,
            hashes.v1.to_bytes().hex() if hashes.has_v1() else None,
        )
    return Pins(None, None)
