"""Announce and scrape query strings, parsed from the raw bytes of the URL.

info_hash and peer_id are binary, so the query is never decoded as text: ``%ff`` is a byte,
not an error. ``+`` means a space, as in any form-encoded query. A ``%`` not followed by two hex
digits is an error (never a byte dropped or kept as it was). Fields are split on ``&`` only:
``;`` is an ordinary character (WHATWG URL, as browsers and BitTorrent clients write them).
"""

from __future__ import annotations

import re
from binascii import a2b_qp
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

from weightless.wire.numbers import (
    EVENT_COMPLETED,
    EVENT_NONE,
    EVENT_PAUSED,
    EVENT_STARTED,
    EVENT_STOPPED,
    INT64_MAX,
)

# the request line's own limit (8 KiB, 414 above): within it, a counter of any length saturates
# (never refused), so the query is not refused for its length first
MAX_QUERY = 8192
MAX_SCRAPE_HASHES = 64
# a scrape of MAX_SCRAPE_HASHES full 32-byte v2 hashes written fully as %XX is 64 * 107 bytes;
# the HTTP request line (8 KiB) bounds it anyway
MAX_SCRAPE_QUERY = 8192

_EVENTS = {
    b"": EVENT_NONE,
    b"empty": EVENT_NONE,
    b"completed": EVENT_COMPLETED,
    b"started": EVENT_STARTED,
    b"stopped": EVENT_STOPPED,
    b"paused": EVENT_PAUSED,
}


class QueryError(ValueError):
    """A request the tracker refuses; the message is sent to the client as the failure reason."""


class Announce(NamedTuple):
    info_hash: bytes  # 20 bytes: a v1 hash or a v2 hash truncated as in BEP 52
    peer_id: bytes
    port: int
    uploaded: int
    downloaded: int
    left: int | None  # None when the client did not say
    event: int
    numwant: int | None  # None: the tracker's default
    compact: bool
    no_peer_id: bool


_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def _unquote(value: bytes) -> bytes:
    """Percent-decode a query value (``+`` is a space); QueryError for a ``%`` that is not
    followed by two hex digits."""
    if b"%" not in value:
        return value.replace(b"+", b" ") if b"+" in value else value
    if b"=" not in value and b"+" not in value and b"\n" not in value and b"\r" not in value:
        # %XX escapes are quoted-printable's =XX: binascii decodes them in C, 10x faster. Each
        # well-formed escape shrinks the value by exactly 2 bytes; a2b_qp keeps a malformed one
        # as it is or (a trailing "=", a soft line break) drops it, so any other length means
        # a malformed escape, which the slow path names.
        decoded = a2b_qp(value.replace(b"%", b"="))
        if len(decoded) == len(value) - 2 * value.count(b"%"):
            return decoded
    if _BAD_ESCAPE.search(value) is not None:
        raise QueryError("malformed percent-encoding: a % must be followed by two hex digits")
    return unquote_to_bytes(value.replace(b"+", b" "))


def _fields(raw: bytes) -> dict[bytes, bytes]:
    """The first value of each key, still percent-encoded (most are never decoded). Keys are
    taken as sent: no client encodes them."""
    if len(raw) > MAX_QUERY:
        raise QueryError(f"query string too long (over {MAX_QUERY} bytes)")
    parts = raw.split(b"&")
    parts.reverse()  # so that the first occurrence of a key is the one kept
    fields: dict[bytes, bytes] = {}
    for part in parts:
        key, _, value = part.partition(b"=")
        fields[key] = value
    return fields


def wire_hash(value: bytes) -> bytes:
    """A 20-byte swarm hash from a query value: v1, truncated v2, or a full v2 truncated here."""
    if len(value) == 20:
        return value
    if len(value) == 32:
        return value[:20]
    raise QueryError("invalid info_hash: expected 20 bytes (or a 32-byte v2 hash)")


def _count(name: str, value: bytes) -> int:
    """A non-negative decimal integer, at most INT64_MAX: a larger one (any number of digits)
    is taken as INT64_MAX, never refused; a sign or anything else is a QueryError."""
    if not value.isdigit():
        value = _unquote(value)
        if not value.isdigit():  # bytes.isdigit: ASCII digits only, so no sign, space or dot
            raise QueryError(f"invalid {name}: expected a non-negative integer")
    if len(value) > 19:
        value = value.lstrip(b"0") or b"0"
        if len(value) > 19:
            return INT64_MAX
    number = int(value)
    return number if number <= INT64_MAX else INT64_MAX


def parse_announce(raw: bytes) -> Announce:
    """Parse the query of an announce; raises QueryError with a reason the client can read."""
    fields = _fields(raw)
    info_hash = fields.get(b"info_hash")
    if info_hash is None:
        raise QueryError("missing info_hash")
    peer_id = fields.get(b"peer_id")
    if peer_id is None:
        raise QueryError("missing peer_id")
    peer_id = _unquote(peer_id)
    if len(peer_id) != 20:
        raise QueryError("invalid peer_id: expected 20 bytes")
    port_raw = fields.get(b"port")
    if port_raw is None:
        raise QueryError("missing port")
    port = _count("port", port_raw)
    if not 0 < port < 65536:
        raise QueryError("invalid port: expected 1-65535")
    event = _EVENTS.get(_unquote(fields.get(b"event", b"")))
    if event is None:
        raise QueryError("invalid event: expected started, completed, stopped or none")
    left_raw = fields.get(b"left")
    numwant_raw = fields.get(b"numwant")
    numwant = None
    if numwant_raw is not None and numwant_raw != b"-1":
        numwant = _count("numwant", numwant_raw)
    return Announce(
        wire_hash(_unquote(info_hash)),
        peer_id,
        port,
        _count("uploaded", fields.get(b"uploaded", b"0")),
        _count("downloaded", fields.get(b"downloaded", b"0")),
        None if left_raw is None else _count("left", left_raw),
        event,
        numwant,
        fields.get(b"compact", b"1") != b"0",
        fields.get(b"no_peer_id", b"0") not in (b"0", b""),
    )


def announce_hash(raw: bytes) -> bytes | None:
    """Just the 20-byte info hash of an announce query (None when it has no valid one): enough
    to decide which worker answers it, without splitting the whole query."""
    at = raw.find(b"info_hash=")
    while at > 0 and raw[at - 1] != 0x26:  # the first "info_hash" key, not "xinfo_hash"
        at = raw.find(b"info_hash=", at + 1)
    if at < 0:
        return None
    end = raw.find(b"&", at)
    try:
        return wire_hash(_unquote(raw[at + 10 : end if end >= 0 else len(raw)]))
    except QueryError:
        return None


def parse_scrape(raw: bytes) -> list[bytes]:
    """The info hashes of a scrape, as sent (20 or 32 bytes each), in order and without
    repeats; at most MAX_SCRAPE_HASHES of them."""
    if len(raw) > MAX_SCRAPE_QUERY:
        raise QueryError(f"query string too long (over {MAX_SCRAPE_QUERY} bytes)")
    hashes: list[bytes] = []
    for part in raw.split(b"&"):
        key, _, value = part.partition(b"=")
        if key == b"info_hash":
            value = _unquote(value)
            if len(value) not in (20, 32):
                raise QueryError("invalid info_hash: expected 20 bytes (or a 32-byte v2 hash)")
            if value not in hashes:
                if len(hashes) == MAX_SCRAPE_HASHES:
                    raise QueryError(f"too many info_hash values (at most {MAX_SCRAPE_HASHES})")
                hashes.append(value)
    if not hashes:
        raise QueryError("scrape needs at least one info_hash")
    return hashes
