"""Torrent signatures: Ed25519 over both info hashes of a torrent (draft "RFC 0001: hybrid
torrent signing" of the original project; docs/security.md says how the registry uses them).

Pure: bytes in, bytes out, no I/O. The signed bytes are::

    b"weightless:torrent-sig:v1" + bencode({alg: "ed25519", btih: <20 bytes, v1 or hybrid>,
                                           btmh: <32 bytes, v2 or hybrid>, pub: <32 bytes>, v: 1})

and a signature object, as a signed .torrent lists it under its top-level ``signatures``, is
``bencode({alg: "ed25519", pub: <32 bytes>, sig: <64 bytes>, v: 1})``. Both are written by
hand: their shape is fixed, and a generic encoder's quirks must never change a signed byte.
Binding both hashes is the point: a signature over a hybrid's v2 hash alone would let anyone
pair it with another v1 info dict (SHA-1 collisions are practical)."""

from __future__ import annotations

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


class BadSignature(ValueError):
    """A signature object that is malformed or does not verify; the message says which."""


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
    otherwise."""
    try:
        key = Ed25519PublicKey.from_public_bytes(signature.pub)
    except ValueError:
        raise BadSignature("pub is not an Ed25519 public key") from None
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
    return Signature(pub, sig)


def from_hex(public_key: str, signature: str) -> Signature:
    """The registry's form: ``publisher_key`` (64 hex) and ``signature`` (128 hex)."""
    try:
        pub, sig = bytes.fromhex(public_key), bytes.fromhex(signature)
    except ValueError:
        raise BadSignature("publisher_key and signature must be hex") from None
    if len(pub) != PUB_BYTES:
        raise BadSignature(f"publisher_key must be {2 * PUB_BYTES} hex characters")
    if len(sig) != SIG_BYTES:
        raise BadSignature(f"signature must be {2 * SIG_BYTES} hex characters")
    return Signature(pub, sig)
