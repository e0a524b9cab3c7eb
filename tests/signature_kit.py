"""A reader of signed .torrent files written from the signature's byte layout alone, with no
project code: what the tests check weightless's own signing and parsing against."""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def scan(data: bytes, pos: int) -> tuple[Any, int]:
    """(value, end) of the bencode value at ``pos``; dicts as lists of (key, value, start, end)."""
    c = data[pos : pos + 1]
    if c == b"i":
        end = data.index(b"e", pos)
        return int(data[pos + 1 : end]), end + 1
    if c.isdigit():
        colon = data.index(b":", pos)
        start = colon + 1
        return data[start : start + int(data[pos:colon])], start + int(data[pos:colon])
    items: list[Any] = []
    pos += 1
    while data[pos : pos + 1] != b"e":
        if c == b"l":
            item, pos = scan(data, pos)
            items.append(item)
        else:
            key, start = scan(data, pos)
            item, pos = scan(data, start)
            items.append((key, item, start, pos))
    return items, pos + 1


def from_scratch_verify(torrent: bytes) -> list[bytes]:
    """The public keys whose signatures in ``torrent`` verify; raises if any does not."""
    top, _ = scan(torrent, 0)
    fields = {key: (value, start, end) for key, value, start, end in top}
    _, start, end = fields[b"info"]
    info = torrent[start:end]
    info_fields = {key: value for key, value, _, _ in fields[b"info"][0]}
    btih = hashlib.sha1(info).digest() if b"pieces" in info_fields else None
    btmh = hashlib.sha256(info).digest() if info_fields.get(b"meta version") == 2 else None
    keys = []
    for obj in fields[b"signatures"][0]:
        o = {key: value for key, value, _, _ in obj}
        assert o[b"alg"] == b"ed25519" and o[b"v"] == 1
        body = b"d3:alg7:ed25519"
        if btih is not None:
            body += b"4:btih20:" + btih
        if btmh is not None:
            body += b"4:btmh32:" + btmh
        body += b"3:pub32:" + o[b"pub"] + b"1:vi1ee"
        Ed25519PublicKey.from_public_bytes(o[b"pub"]).verify(
            o[b"sig"], b"weightless:torrent-sig:v1" + body
        )
        keys.append(o[b"pub"])
    return keys
