"""Registry entries: the record, the checks on what clients send, and the RegistryEntry JSON.

Pure: no I/O. Every check raises `Invalid` with a message that can go to the client as is."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from weightless.torrent.magnet import entry_magnet
from weightless.torrent.metainfo import TorrentError, TorrentInfo, parse_torrent
from weightless.torrent.signing import (
    BadSignature,
    Signature,
    from_hex,
    public_key_from_hex,
    verify,
)
from weightless.wire.numbers import INT64_MAX
from weightless.wire.repo import valid_version
from weightless.wire.text import describe, unsafe_char

_HEX = re.compile(r"[0-9a-fA-F]*")
TEXT_FIELDS = ("description", "publisher", "license", "category", "tags")
MULTILINE_FIELDS = ("description",)  # may hold \n, \r and \t
OPTIONAL_FIELDS = ("description", "publisher", "license", "size", "category", "tags")


class Invalid(ValueError):
    """Bad input from a client (a 400); the message says what is expected."""


@dataclass
class Entry:
    """One registry entry as the store keeps it (the .torrent bytes stay in the store)."""

    info_hash: str  # 64 hex (v2 SHA-256) or 40 hex (a v1-only torrent's SHA-1), lowercase
    name: str
    v1_info_hash: str | None = None
    verified: bool = False
    completions: int = 0
    description: str | None = None
    publisher: str | None = None
    license: str | None = None
    size: int | None = None
    category: str | None = None
    tags: str | None = None
    publisher_key: str | None = None  # 64 hex Ed25519 public key, with signature
    signature: str | None = None  # 128 hex, over the entry's hashes (weightless.torrent.signing)
    version: str | None = None  # 1-64 of [A-Za-z0-9._+-] (weightless.wire.repo)
    created_at: float | None = None  # Unix seconds when first registered (set by the store)

    def hashes(self) -> list[str]:
        return [self.info_hash] + ([self.v1_info_hash] if self.v1_info_hash else [])

    def signed_hashes(self) -> tuple[bytes | None, bytes | None]:
        """(btih, btmh) as a signature covers them: the v1 SHA-1 and the full v2 SHA-256."""
        if len(self.info_hash) == 40:
            return bytes.fromhex(self.info_hash), None
        v1 = bytes.fromhex(self.v1_info_hash) if self.v1_info_hash else None
        return v1, bytes.fromhex(self.info_hash)


def parse_hash(value: object, field: str = "info_hash", lengths: tuple[int, ...] = (64, 40)) -> str:
    """A hex info hash in any case, lowercased; 64 chars (v2) or 40 (v1) unless told."""
    if not isinstance(value, str) or not value:
        raise Invalid(f"{field} is required")
    if len(value) not in lengths or not _HEX.fullmatch(value):
        wanted = " or ".join(
            {64: "64 hex characters (v2 SHA-256)", 40: "40 hex characters (v1 SHA-1)"}[n]
            for n in lengths
        )
        raise Invalid(f"{field} must be {wanted}")
    return value.lower()


def check_text(value: object, field: str) -> str:
    """A string that every database can store: UTF-8 without NUL characters."""
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string")
    if "\x00" in value:
        raise Invalid(f"{field} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{field} must be valid Unicode text") from None
    return value


def check_version(value: object) -> str:
    """A version label: 1-64 characters of ``[A-Za-z0-9._+-]``."""
    if not isinstance(value, str) or not valid_version(value):
        raise Invalid("version must be 1-64 characters of A-Z a-z 0-9 . _ + -")
    return value


def rfc3339(seconds: float) -> str:
    """Unix seconds as RFC 3339 UTC to the second: ``2026-12-07T21:04:05Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(seconds)))


def check_readable(value: object, field: str) -> str:
    """`check_text`, and text that people read: no character of
    ``weightless.wire.text.unsafe_char`` (C0 and C1 controls, DEL, bidirectional overrides and
    isolates; a field of ``MULTILINE_FIELDS`` may hold ``\\n``, ``\\r`` and ``\\t``). `Invalid`
    naming the field and the character otherwise."""
    text = check_text(value, field)
    char = unsafe_char(text, multiline=field in MULTILINE_FIELDS)
    if char is not None:
        raise Invalid(
            f"{field} must not contain {describe(char)} (control and bidirectional "
            "characters are refused in text people read)"
        )
    return text


def check_key(value: object, field: str = "key") -> str:
    """An Ed25519 public key as 64 hex characters, lowercased: the canonical encoding of a
    point not of small order (``weightless.torrent.signing.check_public_key``); `Invalid`
    otherwise."""
    try:
        return public_key_from_hex(value, field).hex()
    except BadSignature as e:
        raise Invalid(str(e)) from None


def check_size(value: object, field: str = "size") -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 1e9 and 1000000000.0 are whole numbers
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
        raise Invalid(f"{field} must be a whole number of bytes from 0 to {INT64_MAX}")
    return value


def parse_whole(text: str, field: str, low: int = 0, high: int = INT64_MAX) -> int:
    """A whole number written in ASCII digits, with one optional leading ``-``, from ``low``
    to ``high``; Invalid (a 400) with the range for anything else: ``--5``, ``+5``, `` 5``,
    ``1.0``, non-ASCII digits, or 5,000 digits (never converted: no int() of unbounded text)."""
    digits = text[1:] if text.startswith("-") else text
    if not digits.isascii() or not digits.isdigit():
        raise Invalid(f"{field} must be a whole number from {low} to {high}")
    significant = digits.lstrip("0")
    if len(significant) > len(str(max(abs(low), abs(high)))):
        raise Invalid(f"{field} must be a whole number from {low} to {high}")
    value = int(significant or "0")
    if text.startswith("-"):
        value = -value
    if not low <= value <= high:
        raise Invalid(f"{field} must be a whole number from {low} to {high}")
    return value


def parse_size(text: str) -> int:
    return parse_whole(text, "size (bytes)", 0, INT64_MAX)


@dataclass
class Submission:
    """A validated POST: the entry to upsert and the .torrent file, when one came with it.
    ``signatures``: the one given in the JSON, else those of the file (not yet checked
    against the entry's hashes, which may need the stored v1_info_hash)."""

    entry: Entry
    torrent_data: bytes | None = None
    meta: str | None = None  # the /api/registry/meta JSON of torrent_data, computed once here
    signatures: tuple[Signature, ...] = ()


def parse_json_body(body: bytes) -> Submission:
    """The body of POST /api/registry (JSON), checked field by field."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise Invalid("invalid JSON body") from None
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object")
    info_hash = parse_hash(data.get("info_hash"))
    name = data.get("name")
    if name is None or name == "":
        raise Invalid("name is required")
    entry = Entry(info_hash=info_hash, name=check_readable(name, "name"))
    _optional(entry, data)
    v1 = data.get("v1_info_hash")
    if v1 is not None:
        v1 = parse_hash(v1, "v1_info_hash", (40,))
        if len(info_hash) == 40 and v1 != info_hash:
            raise Invalid("v1_info_hash goes with a 64 hex (v2) info_hash; this one is v1")
        entry.v1_info_hash = v1 if len(info_hash) == 64 else None
    given = _signature(data)
    raw = data.get("torrent_data")
    if raw is None:
        return Submission(entry, None, None, given)
    torrent_data = _base64(raw)
    info = _parse(torrent_data)
    if info.info_hash_hex != info_hash:
        raise Invalid(f"info_hash does not match torrent_data ({info.info_hash_hex})")
    if v1 is not None and info.v1_info_hash_hex != v1:
        raise Invalid(f"v1_info_hash does not match torrent_data ({info.v1_info_hash_hex})")
    if info.v2_info_hash is not None:
        entry.v1_info_hash = info.v1_info_hash_hex
    return Submission(entry, torrent_data, meta_json(info), given or info.signatures)


def _signature(data: Mapping[str, Any]) -> tuple[Signature, ...]:
    """``publisher_key`` and ``signature``: both or neither, as hex of the right lengths."""
    key, sig = data.get("publisher_key"), data.get("signature")
    if key is None and sig is None:
        return ()
    if key is None or sig is None:
        raise Invalid("publisher_key and signature go together: give both or neither")
    if not isinstance(key, str) or not isinstance(sig, str):
        raise Invalid("publisher_key and signature must be hex strings")
    try:
        return (from_hex(key, sig),)
    except BadSignature as e:
        raise Invalid(str(e)) from None


def check_signature(entry: Entry, signature: Signature) -> None:
    """`Invalid` unless ``signature`` signs exactly the entry's hashes; then it is the entry's."""
    btih, btmh = entry.signed_hashes()
    try:
        verify(signature, btih, btmh)
    except BadSignature as e:
        raise Invalid(f"signature refused: {e}") from None
    entry.publisher_key, entry.signature = signature.public_key_hex, signature.signature_hex


def _optional(entry: Entry, data: Mapping[str, Any]) -> None:
    for field in TEXT_FIELDS:
        value = data.get(field)
        if value is not None:
            setattr(entry, field, check_readable(value, field))
    size = data.get("size")
    if size is not None:
        entry.size = check_size(size)
    version = data.get("version")
    if version is not None:
        entry.version = check_version(version)


def _base64(raw: object) -> bytes:
    if not isinstance(raw, str):
        raise Invalid("torrent_data must be a base64 string")
    try:
        return base64.b64decode(raw.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise Invalid("torrent_data is not valid base64") from None


def _parse(torrent_data: bytes) -> TorrentInfo:
    try:
        return parse_torrent(torrent_data)
    except TorrentError as e:
        raise Invalid(f"invalid torrent: {e}") from None


def parse_upload(torrent_data: bytes, params: Mapping[str, str]) -> Submission:
    """POST /api/registry/torrent: the raw file, and entry fields as query parameters."""
    if not torrent_data:
        raise Invalid("the body must be a .torrent file")
    info = _parse(torrent_data)
    entry = Entry(
        info_hash=info.info_hash_hex,
        v1_info_hash=info.v1_info_hash_hex if info.v2_info_hash is not None else None,
        name=check_readable(params.get("name") or info.name, "name"),
        size=info.total_size,
    )
    for field in TEXT_FIELDS:
        value = params.get(field)
        if value is not None:
            setattr(entry, field, check_readable(value, field))
    if params.get("size") is not None:
        entry.size = parse_size(params["size"])
    if params.get("version") is not None:
        entry.version = check_version(params["version"])
    return Submission(entry, torrent_data, meta_json(info), info.signatures)


def meta_json(info: TorrentInfo) -> str:
    """The body of GET /api/registry/meta for a parsed file, as stored with it."""
    return json.dumps(info.meta(), ensure_ascii=False)


def stored_meta(torrent_data: bytes) -> str:
    """The /meta JSON of a file stored before it was kept with it; TorrentError if unreadable."""
    # its signatures were verified when it was stored: listed here, not checked again
    return meta_json(parse_torrent(torrent_data, verify_signatures=False))


def entry_json(
    entry: Entry, seeders: int, leechers: int, trackers: Sequence[str] = ()
) -> dict[str, Any]:
    """A RegistryEntry: the spec's keys, optional ones left out when never set, ``created_at``
    (RFC 3339 UTC) and ``magnet`` (its hashes as it has them, announcing to ``trackers``)."""
    out: dict[str, Any] = {"info_hash": entry.info_hash}
    if entry.v1_info_hash:
        out["v1_info_hash"] = entry.v1_info_hash
    out["name"] = entry.name
    if entry.version is not None:
        out["version"] = entry.version
    out["verified"] = bool(entry.verified)
    out["completions"] = entry.completions
    for field in OPTIONAL_FIELDS:
        value = getattr(entry, field)
        if value is not None:
            out[field] = value
    if entry.publisher_key and entry.signature:
        out["publisher_key"] = entry.publisher_key
        out["signature"] = entry.signature
    if entry.created_at is not None:
        out["created_at"] = rfc3339(entry.created_at)
    out["magnet"] = entry_magnet(entry.name, entry.info_hash, entry.v1_info_hash, trackers)
    out["seeders"] = seeders
    out["leechers"] = leechers
    return out
