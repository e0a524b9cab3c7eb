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


# Ed25519 public keys that are points of small order (order 1, 2, 4 or 8), as libsodium's
# blocklist (ge25519_has_small_order) and "Taming the many EdDSAs" (Chalkias et al., 2020) list
# them: the eight points in canonical form, each with the sign bit flipped, and the
# non-canonical y >= p spellings of y = 0, 1 (p = 2^255 - 19). `cryptography` loads them all.
_SMALL_ORDER_Y = {
    "identity (order 1)": "0100000000000000000000000000000000000000000000000000000000000000",
    "y = p-1 (order 2)": "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "y = 0 (order 4)": "0000000000000000000000000000000000000000000000000000000000000000",
    "order 8, a": "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "order 8, b": "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "y = p, non-canonical 0": "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "y = p+1, non-canonical 1": "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}


def _flip_sign(hex_key: str) -> str:
    raw = bytearray.fromhex(hex_key)
    raw[31] ^= 0x80
    return raw.hex()


SMALL_ORDER_KEYS: dict[str, str] = {
    **_SMALL_ORDER_Y,
    **{f"{name}, sign bit flipped": _flip_sign(key) for name, key in _SMALL_ORDER_Y.items()},
}
assert len(set(SMALL_ORDER_KEYS.values())) == 14

IDENTITY = bytes.fromhex(_SMALL_ORDER_Y["identity (order 1)"])
# R = the identity, S = 0: with the identity as the key, [S]B = R + [k]A holds for every message
FORGED_SIG = IDENTITY + bytes(32)


def forged_signature_object(pub: bytes = IDENTITY, sig: bytes = FORGED_SIG) -> bytes:
    """A bencoded signature object (alg, pub, sig, v), written by hand."""
    return b"d3:alg7:ed255193:pub32:" + pub + b"3:sig64:" + sig + b"1:vi1ee"


def with_forged_signature(torrent: bytes, pub: bytes = IDENTITY, sig: bytes = FORGED_SIG) -> bytes:
    """``torrent`` (no ``signatures`` yet, keys in order) with a ``signatures`` list holding one
    object by ``pub``, spliced in before the first top-level key that sorts after it."""
    top, _ = scan(torrent, 0)
    at = len(torrent) - 1
    for key, _value, start, _end in top:
        if key > b"signatures":
            at = start - len(key) - len(str(len(key))) - 1
            break
    added = b"10:signaturesl" + forged_signature_object(pub, sig) + b"e"
    return torrent[:at] + added + torrent[at:]
