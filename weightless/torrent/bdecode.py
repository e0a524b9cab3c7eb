"""Strict bencode decoding of untrusted bytes (a .torrent upload).

Pure: bytes in, values out. Canonical integers and string lengths only (no ``i-0e``, ``i03e``,
``03:abc``), string dictionary keys, no duplicate keys, bounded nesting and a bounded number of
values, nothing after the end. Besides the value it returns where each top-level dictionary
value lies in the input, so that a caller can hash ``info`` exactly as it is written and change
``signatures`` without touching the rest. Anything malformed raises `BdecodeError` with the
byte where it went wrong."""

from __future__ import annotations

import re
from typing import Any

MAX_NESTING = 128  # bencode containers inside each other

# One bencode token: an integer, a string's length prefix, or l/d/e.
_TOKEN = re.compile(rb"i(0|-?[1-9][0-9]{0,18})e|(0|[1-9][0-9]{0,18}):|(l)|(d)|(e)")

Spans = dict[bytes, tuple[int, int]]  # top-level key -> where its value lies in the input


class BdecodeError(ValueError):
    """The bytes are not strict bencode; the message says why and where."""


def bdecode(data: bytes, max_items: int) -> tuple[Any, Spans]:
    """The value bencoded in ``data`` (bytes, int, list, dict with bytes keys) and the spans
    of its top-level dictionary values (empty when the top is not a dictionary). At most
    ``max_items`` values in all, which caps time and memory."""
    match, size = _TOKEN.match, len(data)
    spans: Spans = {}
    budget = max_items

    def value(pos: int, depth: int) -> tuple[Any, int]:
        nonlocal budget
        budget -= 1
        if budget < 0:
            raise BdecodeError(f"more than {max_items} bencode values")
        token = match(data, pos)
        if token is None:
            raise BdecodeError(_bad_token(data, pos))
        end, kind = token.end(), token.lastindex
        if kind == 2:
            stop = end + int(token.group(2))
            if stop > size:
                raise BdecodeError("truncated bencode data")
            return data[end:stop], stop
        if kind == 1:
            return int(token.group(1)), end
        if kind == 5:
            raise BdecodeError(f"unexpected end marker at byte {pos}")
        if depth >= MAX_NESTING:
            raise BdecodeError("bencode nested too deeply")
        pos = end
        if kind == 3:
            items = []
            while not data.startswith(b"e", pos):
                item, pos = value(pos, depth + 1)
                items.append(item)
            return items, pos + 1
        out: dict[bytes, Any] = {}
        while not data.startswith(b"e", pos):
            key, start = value(pos, depth + 1)
            if not isinstance(key, bytes):
                raise BdecodeError(f"dictionary key at byte {pos} is not a string")
            if key in out:
                raise BdecodeError(f"duplicate dictionary key {key!r}")
            out[key], pos = value(start, depth + 1)
            if depth == 0:
                spans[key] = (start, pos)
        return out, pos + 1

    top, end = value(0, 0)
    if end != size:
        raise BdecodeError("trailing data after the torrent dictionary")
    return top, spans


def _bad_token(data: bytes, pos: int) -> str:
    if pos >= len(data):
        return "truncated bencode data"
    if data[pos : pos + 1] == b"i":
        return f"invalid integer at byte {pos}"
    if data[pos : pos + 1].isdigit():
        return f"invalid string length at byte {pos}"
    return f"invalid bencode at byte {pos}"
