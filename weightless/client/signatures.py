"""Signing .torrent files and checking signatures, for publishers and downloaders.

The signed statement (Ed25519 over both info hashes) and the signature objects are built and
checked by `weightless.torrent.signing`. Signing appends to the file's top-level
``signatures`` and leaves every other byte, so ``info`` and both info hashes, as they were.
A signature proves that the holder of a key published these hashes; whether the key belongs
to the publisher it claims is what the registry's trusted keys
(``GET /api/publishers/{publisher}``) say."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from weightless.client.errors import ClientError
from weightless.client.torrents import write_torrent
from weightless.torrent import signing
from weightless.torrent.metainfo import BadPublicKey, TorrentError, parse_torrent, sign_torrent
from weightless.torrent.signing import BadKey, BadSignature, Signature


def sign_bytes(data: bytes, key: Ed25519PrivateKey, where: str = "the torrent") -> bytes:
    """``data`` (a .torrent) with a signature by ``key`` added; `ClientError` for a file that
    is not a valid torrent or that this key already signed."""
    try:
        return sign_torrent(data, key)
    except TorrentError as e:
        raise ClientError(f"cannot sign {where}: {e}") from None


def signer(key: Ed25519PrivateKey) -> Callable[[bytes], bytes]:
    """`sign_bytes` with ``key``, in the shape `weightless.client.publish` takes as ``sign``;
    a file this key already signed is left as it is (publishing what `sign` made)."""
    pub = signing.public_bytes(key)

    def sign(data: bytes) -> bytes:
        try:
            if any(s.pub == pub for s in parse_torrent(data).signatures):
                return data
        except TorrentError:
            pass  # sign_bytes says why
        return sign_bytes(data, key)

    return sign


def sign_file(path: str | os.PathLike[str], key: Ed25519PrivateKey) -> Signature:
    """Sign the .torrent at ``path`` in place (written to a temporary file, then renamed over
    it, so a crash leaves the old file or the new one). Returns the signature added."""
    target = Path(path)
    try:
        data = target.read_bytes()
        mode = target.stat().st_mode & 0o777
    except OSError as e:
        raise ClientError(f"cannot read {target}: {e.strerror or e}") from None
    signed = sign_bytes(data, key, str(target))
    write_torrent(target, signed, mode)  # the file keeps its mode
    return parse_torrent(signed).signatures[-1]


@dataclass(frozen=True)
class Verification:
    """What a check found: whether there is a signature, whether it verifies against the
    hashes, by which key, whether that key is trusted for the publisher (None: no publisher
    or no trust list to ask), and a one-line reason for people."""

    signed: bool
    valid: bool
    public_key: str | None
    trusted: bool | None
    reason: str
    public_keys: tuple[str, ...] = ()  # every key that signed a file

    def as_json(self) -> dict[str, Any]:
        """The object ``weightless verify --json`` prints: signed, valid, public_key, trusted."""
        return {
            "signed": self.signed,
            "valid": self.valid,
            "public_key": self.public_key,
            "trusted": self.trusted,
        }


def _trusted(key: str | None, trusted_keys: Collection[str] | None) -> bool | None:
    if key is None or trusted_keys is None:
        return None
    return key.lower() in {k.lower() for k in trusted_keys}


def verify_torrent(
    data: bytes, trusted_keys: Collection[str] | None = None, where: str = "the torrent"
) -> Verification:
    """Check every signature of a .torrent file against its own hashes. The key reported is
    the first one in ``trusted_keys`` (the keys trusted for its publisher), else the first.
    `ClientError` when the file is not a torrent at all, or names a key that is not an
    Ed25519 public key."""
    try:
        info = parse_torrent(data)
    except BadPublicKey as e:
        raise ClientError(f"{where}: {e}") from None
    except TorrentError as e:
        if not str(e).startswith("signature"):
            raise ClientError(f"{where} is not a valid torrent file: {e}") from None
        return Verification(True, False, None, None, f"{where}: {e}")
    keys = tuple(s.public_key_hex for s in info.signatures)
    if not keys:
        return Verification(False, False, None, None, f"{where} is not signed")
    chosen = next((k for k in keys if _trusted(k, trusted_keys)), keys[0])
    trusted = _trusted(chosen, trusted_keys)
    return Verification(True, True, chosen, trusted, _says(chosen, trusted), keys)


def _says(key: str, trusted: bool | None) -> str:
    said = f"signed by key {key}"
    if trusted is None:
        return said
    return said + (", trusted for the publisher" if trusted else ", NOT trusted for the publisher")


def entry_hashes(entry: Mapping[str, Any]) -> tuple[bytes | None, bytes | None]:
    """(btih, btmh) of a RegistryEntry as a signature covers them; `ClientError` for an
    entry whose hashes are not hex of the right lengths."""
    info_hash, v1 = entry.get("info_hash"), entry.get("v1_info_hash")
    try:
        if isinstance(info_hash, str) and len(info_hash) == 40 and v1 is None:
            return bytes.fromhex(info_hash), None
        if isinstance(info_hash, str) and len(info_hash) == 64:
            if v1 is None:
                return None, bytes.fromhex(info_hash)
            if isinstance(v1, str) and len(v1) == 40:
                return bytes.fromhex(v1), bytes.fromhex(info_hash)
    except ValueError:
        pass
    raise ClientError(f"the registry sent an entry with malformed info hashes: {info_hash!r}")


def _file_problem(hashes: tuple[bytes | None, bytes | None], torrent: bytes) -> str | None:
    """Why a stored .torrent does not go with an entry of these hashes, or None; `ClientError`
    for one whose signatures name a key that is not an Ed25519 public key."""
    try:
        info = parse_torrent(torrent)
    except BadPublicKey as e:
        raise ClientError(f"refusing the stored .torrent: {e}") from None
    except TorrentError as e:
        return f"the stored .torrent: {e}"
    if (info.v1_info_hash, info.v2_info_hash) != hashes:
        return "the stored .torrent has other info hashes than the entry"
    return None


def verify_entry(
    entry: Mapping[str, Any],
    torrent: bytes | None,
    trusted_keys: Collection[str] | None,
) -> Verification:
    """Check a registry entry's ``publisher_key``/``signature`` against the entry's hashes and,
    when the registry stores a file, against that file's own hashes (and the file's own
    signatures). ``trusted_keys``: the keys trusted for the entry's publisher. `ClientError`
    for a ``publisher_key`` that is not an Ed25519 public key (a small-order point "signs"
    anything)."""
    key, sig = entry.get("publisher_key"), entry.get("signature")
    hashes = entry_hashes(entry)
    problem = None if torrent is None else _file_problem(hashes, torrent)
    if problem is not None:
        return Verification(key is not None, False, None, None, problem)
    if key is None and sig is None:
        return Verification(False, False, None, None, "the entry is not signed")
    try:
        if not isinstance(key, str) or not isinstance(sig, str):
            raise BadSignature("publisher_key and signature must be hex strings")
        signing.verify(signing.from_hex(key, sig), *hashes)
    except BadKey as e:
        raise ClientError(f"refusing the entry's signature: {e}") from None
    except BadSignature as e:
        return Verification(True, False, str(key), None, f"the entry's signature: {e}")
    trusted = _trusted(key, trusted_keys)
    return Verification(True, True, key.lower(), trusted, _says(key.lower(), trusted))


def download_check(
    require_verified: bool,
) -> Callable[[bytes | None, Mapping[str, Any] | None], None]:
    """The check `weightless.client.fetch` runs before it writes any data: the .torrent it
    is about to use must have the entry's hashes and carry only valid signatures, the entry's
    signature (when it has one) must verify against them, and with ``require_verified`` the
    entry must be verified. Raises `ClientError` to refuse."""

    def check(torrent: bytes | None, entry: Mapping[str, Any] | None) -> None:
        if entry is None:
            if require_verified:
                raise ClientError("not in the registry, so not verified (--require-verified)")
            return
        name = entry.get("info_hash")
        problem = None if torrent is None else _file_problem(entry_hashes(entry), torrent)
        if problem is not None:
            raise ClientError(f"refusing {name}: {problem}")
        found = verify_entry(entry, None, None)
        if found.signed and not found.valid:
            raise ClientError(f"refusing {name}: {found.reason}")
        if require_verified and entry.get("verified") is not True:
            raise ClientError(
                f"{entry.get('info_hash')} is not verified by the registry (--require-verified)"
            )

    return check
