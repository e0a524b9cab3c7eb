"""Torrent signatures: Ed25519 over both info hashes of a torrent (draft "RFC 0001: hybrid
torrent signing" of the original project; docs/security.md says how the registry uses them).

Pure: bytes in, bytes out, no I/O. The signed bytes are::

    b"weightless:torrent-sig:v1" + bencode({alg: "ed25519", btih: <20 bytes, v1 or hybrid>,
                                           btmh: <32 bytes, v2 or hybrid>, pub: <32 bytes>, v: 1})

and a signature object, as a signed .torrent lists it under its top-level ``signatures``, is
``bencode({alg: "ed25519", pub: <32 bytes>, sig: <64 bytes>, v: 1})``. Both are written by
hand: their shape is fixed, and a generic encoder's quirks must never change a signed byte.
Binding both hashes is the point: a signature over a hybrid's v2 hash alone would let anyone
pair it with another v1 info dict (SHA-1 collisions are practical).

Public keys are checked here before ``cryptography`` sees them (`check_public_key`):
``cryptography`` takes any 32 bytes that decode to a point, small-order ones included, and
with the identity ``01 00..00`` as the key, the signature ``01 00..00 || 00..00`` (R the
identity, S = 0) verifies for every message."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PREFIX = b"weightless:torrent-sig:v1"
ALG = b"ed25519"
VERSION = 1
PUB_BYTES = 32
SIG_BYTES = 64
BTIH_BYTES = 20  # v1 SHA-1 info hash
BTMH_BYTES = 32  # v2 SHA-256 info hash
_OBJECT_KEYS = {b"alg", b"pub", b"sig", b"v"}

# Edwards25519 (RFC 8032, section 5.1): the field prime, the curve constant d, sqrt(-1)
_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_KEY_HEX = re.compile(f"[0-9a-fA-F]{{{2 * PUB_BYTES}}}")
_SIG_HEX = re.compile(f"[0-9a-fA-F]{{{2 * SIG_BYTES}}}")


class BadSignature(ValueError):
    """A signature object that is malformed or does not verify; the message says which."""


class BadKey(BadSignature):
    """32 bytes that are not an acceptable Ed25519 public key (`check_public_key`)."""


def _decode_point(pub: bytes) -> tuple[int, int] | None:
    """The affine point (x, y) that ``pub`` encodes canonically (RFC 8032, 5.1.3), or None:
    y >= p, no x on the curve for this y, or x = 0 with its sign bit set."""
    y = int.from_bytes(pub, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= _P:
        return None
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    if v * x * x % _P == (-u) % _P:
        x = x * _SQRT_M1 % _P
    if v * x * x % _P != u:
        return None
    if x == 0 and sign:
        return None
    return (x, y) if x & 1 == sign else (_P - x, y)


def _is_small_order(x: int, y: int) -> bool:
    """Whether [8](x, y) is the identity: the point lies in the group of the cofactor 8, so a
    key made of it lets signatures with a chosen R verify for many or all messages."""
    # extended coordinates (X, Y, Z, T), doubling as in RFC 8032 5.1.4 ("dbl-2008-hwcd")
    X, Y, Z = x, y, 1
    for _ in range(3):
        A, B, C = X * X % _P, Y * Y % _P, 2 * Z * Z % _P
        H = (A + B) % _P
        E = (H - (X + Y) * (X + Y)) % _P
        G = (A - B) % _P
        F = (C + G) % _P
        X, Y, Z = E * F % _P, G * H % _P, F * G % _P
    return X == 0 and Y == Z


def check_public_key(pub: bytes) -> None:
    """Nothing if ``pub`` is the canonical encoding of an Ed25519 point that is not of small
    order; `BadKey` otherwise. Refused: other lengths, y >= p (RFC 8032 5.1.3 rejects them),
    bytes that decode to no point, x = 0 with the sign bit set, and the eight points of order
    1, 2, 4 or 8 (the identity ``01 00..00``, ``ec ff..ff 7f``, ``00..00``, ``00..00 80``,
    ``26 e8 95 8f..fc 05`` and ``c7 17 6a 70..03 7a`` with either sign bit), so every
    non-canonical spelling of them too (libsodium's blocklist of small-order encodings)."""
    if not isinstance(pub, bytes) or len(pub) != PUB_BYTES:
        raise BadKey(f"not an Ed25519 public key: those are {PUB_BYTES} bytes")
    point = _decode_point(pub)
    if point is None:
        raise BadKey(f"{pub.hex()} is not the canonical encoding of an Ed25519 point")
    if _is_small_order(*point):
        raise BadKey(f"{pub.hex()} is a point of small order, not an Ed25519 public key")


def public_key_from_hex(text: object, field: str = "publisher_key") -> bytes:
    """A public key written as 64 hex characters (any case), checked by `check_public_key`;
    `BadKey` naming ``field`` otherwise."""
    if not isinstance(text, str) or not _KEY_HEX.fullmatch(text):
        raise BadKey(f"{field} must be {2 * PUB_BYTES} hex characters (an Ed25519 public key)")
    pub = bytes.fromhex(text)
    try:
        check_public_key(pub)
    except BadKey as e:
        raise BadKey(f"{field}: {e}") from None
    return pub


@dataclass(frozen=True)
class Signature:
    """One signature object: a 32-byte Ed25519 public key and a 64-byte signature."""

    pub: bytes
    sig: bytes

    @property
    def public_key_hex(self) -> str:
        return self.pub.hex()

    @property
    def signature_hex(self) -> str:
        return self.sig.hex()

    def encode(self) -> bytes:
        """The bencoded signature object (keys alg, pub, sig, v in order)."""
        return b"d3:alg7:%s3:pub32:%s3:sig64:%s1:vi%dee" % (ALG, self.pub, self.sig, VERSION)


def _check_hashes(btih: bytes | None, btmh: bytes | None) -> None:
    if btih is None and btmh is None:
        raise ValueError("a statement needs a v1 (btih) or a v2 (btmh) info hash")
    if btih is not None and len(btih) != BTIH_BYTES:
        raise ValueError(f"btih must be {BTIH_BYTES} bytes")
    if btmh is not None and len(btmh) != BTMH_BYTES:
        raise ValueError(f"btmh must be {BTMH_BYTES} bytes")


def statement(pub: bytes, btih: bytes | None, btmh: bytes | None) -> bytes:
    """The exact bytes signed for a torrent with these info hashes (raw digests: btih the v1
    SHA-1 of a v1 or hybrid torrent, btmh the full v2 SHA-256 of a v2 or hybrid one)."""
    _check_hashes(btih, btmh)
    if len(pub) != PUB_BYTES:
        raise ValueError(f"pub must be {PUB_BYTES} bytes")
    parts = [PREFIX, b"d3:alg7:", ALG]
    if btih is not None:
        parts += [b"4:btih20:", btih]
    if btmh is not None:
        parts += [b"4:btmh32:", btmh]
    parts += [b"3:pub32:", pub, b"1:vi%dee" % VERSION]
    return b"".join(parts)


def public_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The 32-byte raw public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(key: Ed25519PrivateKey, btih: bytes | None, btmh: bytes | None) -> Signature:
    """Sign a torrent's info hashes (Ed25519 is deterministic: same key and hashes, same
    signature)."""
    pub = public_bytes(key)
    return Signature(pub, key.sign(statement(pub, btih, btmh)))


def verify(signature: Signature, btih: bytes | None, btmh: bytes | None) -> None:
    """Nothing if ``signature`` signs exactly these hashes (no more, no fewer); `BadSignature`
    otherwise (`BadKey` for a public key `check_public_key` refuses)."""
    check_public_key(signature.pub)
    try:
        key = Ed25519PublicKey.from_public_bytes(signature.pub)
    except ValueError:
        raise BadKey("pub is not an Ed25519 public key") from None
    if len(signature.sig) != SIG_BYTES:
        raise BadSignature(f"sig must be {SIG_BYTES} bytes")
    try:
        key.verify(signature.sig, statement(signature.pub, btih, btmh))
    except InvalidSignature:
        raise BadSignature(
            f"the signature of key {signature.pub.hex()} does not verify against the info hashes"
        ) from None


def from_object(value: Any) -> Signature:
    """A signature object as decoded from bencode (a dict of bytes keys), checked for the
    exact shape: alg "ed25519", v 1, a 32-byte pub, a 64-byte sig, no other key."""
    if not isinstance(value, dict):
        raise BadSignature("a signature object must be a dictionary")
    unknown = set(value) - _OBJECT_KEYS
    if unknown:
        names = ", ".join(sorted(repr(k.decode("latin-1")) for k in unknown))
        raise BadSignature(f"unknown keys in a signature object: {names}")
    if value.get(b"alg") != ALG:
        raise BadSignature('alg must be "ed25519"')
    v = value.get(b"v")
    if isinstance(v, bool) or v != VERSION:
        raise BadSignature(f"v must be {VERSION}")
    pub, sig = value.get(b"pub"), value.get(b"sig")
    if not isinstance(pub, bytes) or len(pub) != PUB_BYTES:
        raise BadSignature(f"pub must be {PUB_BYTES} bytes")
    if not isinstance(sig, bytes) or len(sig) != SIG_BYTES:
        raise BadSignature(f"sig must be {SIG_BYTES} bytes")
    try:
        check_public_key(pub)
    except BadKey as e:
        raise BadKey(f"pub: {e}") from None
    return Signature(pub, sig)


def from_hex(public_key: str, signature: str) -> Signature:
    """The registry's form: ``publisher_key`` (64 hex, a key `check_public_key` takes) and
    ``signature`` (128 hex); `BadKey` for the key, `BadSignature` for the signature."""
    if not isinstance(signature, str) or not _SIG_HEX.fullmatch(signature):
        raise BadSignature(f"signature must be {2 * SIG_BYTES} hex characters")
    return Signature(public_key_from_hex(public_key), bytes.fromhex(signature))
