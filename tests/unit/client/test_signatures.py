"""Signing .torrent files and checking signatures on the client side
(weightless.client.signatures): files signed in place, file and entry checks, and the check
`get` runs before it writes any data."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from registry_kit import make_torrent
from signature_kit import FORGED_SIG, SMALL_ORDER_KEYS, with_forged_signature

from weightless.client import signatures
from weightless.client.errors import ClientError
from weightless.torrent import signing
from weightless.torrent.metainfo import parse_torrent, sign_torrent

KEY = Ed25519PrivateKey.from_private_bytes(b"p" * 32)
OTHER = Ed25519PrivateKey.from_private_bytes(b"q" * 32)
PUB = signing.public_bytes(KEY).hex()
OTHER_PUB = signing.public_bytes(OTHER).hex()


@pytest.fixture(params=["hybrid", "v1", "v2"])
def torrent(request: pytest.FixtureRequest, tmp_path: Path) -> bytes:
    return make_torrent(tmp_path, "model.bin", request.param)


def entry_of(data: bytes, **extra: Any) -> dict[str, Any]:
    info = parse_torrent(data)
    out: dict[str, Any] = {"info_hash": info.info_hash_hex, "name": "m", "verified": False}
    if info.v2_info_hash and info.v1_info_hash:
        out["v1_info_hash"] = info.v1_info_hash_hex
    return {**out, **extra}


def signed_entry(data: bytes, key: Ed25519PrivateKey, **extra: Any) -> dict[str, Any]:
    info = parse_torrent(data)
    s = signing.sign(key, info.v1_info_hash, info.v2_info_hash)
    return entry_of(data, publisher_key=s.public_key_hex, signature=s.signature_hex, **extra)


def test_sign_file_in_place(torrent: bytes, tmp_path: Path) -> None:
    path = tmp_path / "model.torrent"
    path.write_bytes(torrent)
    path.chmod(0o640)
    added = signatures.sign_file(path, KEY)
    assert added.public_key_hex == PUB
    data = path.read_bytes()
    assert parse_torrent(data).signatures == (added,)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(ClientError, match="already signed by key"):
        signatures.sign_file(path, KEY)
    assert path.read_bytes() == data  # a refused signing leaves the file as it was
    signatures.sign_file(path, OTHER)
    assert len(parse_torrent(path.read_bytes()).signatures) == 2
    lt.torrent_info(path.read_bytes())  # libtorrent still loads it


def test_sign_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="cannot read"):
        signatures.sign_file(tmp_path / "missing.torrent", KEY)
    bad = tmp_path / "bad.torrent"
    bad.write_bytes(b"not a torrent")
    with pytest.raises(ClientError, match=r"cannot sign .*bad\.torrent"):
        signatures.sign_file(bad, KEY)


def test_signer_is_what_publish_takes(torrent: bytes) -> None:
    sign = signatures.signer(KEY)
    out = sign(torrent)
    assert parse_torrent(out).signatures[0].public_key_hex == PUB
    assert sign(out) == out  # already signed by this key: published as it is
    assert len(parse_torrent(signatures.signer(OTHER)(out)).signatures) == 2
    with pytest.raises(ClientError, match="cannot sign"):
        sign(b"garbage")


def test_verify_torrent(torrent: bytes) -> None:
    found = signatures.verify_torrent(torrent)
    assert found.as_json() == {"signed": False, "valid": False, "public_key": None, "trusted": None}
    both = sign_torrent(sign_torrent(torrent, OTHER), KEY)
    found = signatures.verify_torrent(both)
    assert found.as_json() == {
        "signed": True,
        "valid": True,
        "public_key": OTHER_PUB,
        "trusted": None,
    }
    assert found.public_keys == (OTHER_PUB, PUB)
    # with the publisher's trusted keys: the trusted one is reported
    assert signatures.verify_torrent(both, [PUB]).as_json()["public_key"] == PUB
    assert signatures.verify_torrent(both, [PUB]).trusted is True
    assert signatures.verify_torrent(both, []).trusted is False
    # tampered
    sig = parse_torrent(both).signatures[1].sig
    bad = both.replace(sig, bytes([sig[0] ^ 1]) + sig[1:])
    found = signatures.verify_torrent(bad)
    assert (found.signed, found.valid) == (True, False)
    assert "does not verify" in found.reason
    with pytest.raises(ClientError, match="not a valid torrent"):
        signatures.verify_torrent(b"d4:infoi1ee")


def test_verify_entry(torrent: bytes, tmp_path: Path) -> None:
    signed = sign_torrent(torrent, KEY)
    entry = signed_entry(torrent, KEY, publisher="org")
    found = signatures.verify_entry(entry, signed, [PUB])
    assert found.as_json() == {"signed": True, "valid": True, "public_key": PUB, "trusted": True}
    assert signatures.verify_entry(entry, None, [OTHER_PUB]).trusted is False
    assert signatures.verify_entry(entry, torrent, None).valid  # the stored file may be unsigned
    unsigned = signatures.verify_entry(entry_of(torrent), torrent, [PUB])
    assert unsigned.as_json() == {
        "signed": False,
        "valid": False,
        "public_key": None,
        "trusted": None,
    }
    # a forged entry signature
    forged = {**entry, "publisher_key": OTHER_PUB}
    found = signatures.verify_entry(forged, None, [OTHER_PUB])
    assert (found.signed, found.valid) == (True, False)
    # a stored file of other hashes
    other = make_torrent(tmp_path, "other.bin", "hybrid")
    found = signatures.verify_entry(entry, other, [PUB])
    assert not found.valid and "other info hashes" in found.reason


def test_download_check(torrent: bytes) -> None:
    signed = sign_torrent(torrent, KEY)
    check = signatures.download_check(require_verified=False)
    entry = signed_entry(torrent, KEY)
    check(signed, entry)
    check(torrent, entry)
    check(None, entry)
    check(torrent, entry_of(torrent))  # unsigned entries pass without --require-verified
    check(None, None)
    # the registry's signature must match the hashes of the .torrent about to be used
    info = parse_torrent(torrent)
    other_v2 = hashlib.sha256(b"other").digest()
    wrong = signing.sign(KEY, info.v1_info_hash, other_v2 if info.v2_info_hash else None)
    if info.v2_info_hash is None:
        wrong = signing.sign(KEY, hashlib.sha1(b"other").digest(), None)
    forged = {**entry, "signature": wrong.signature_hex}
    for data in (signed, torrent, None):
        with pytest.raises(ClientError, match=r"refusing .*does not verify"):
            check(data, forged)
    # a .torrent whose hashes are not the entry's
    with pytest.raises(ClientError, match="other info hashes"):
        check(torrent, {**entry, "info_hash": "ab" * (len(entry["info_hash"]) // 2)})
    # a .torrent with a tampered signature
    sig = parse_torrent(signed).signatures[0].sig
    with pytest.raises(ClientError, match="signature 1"):
        check(signed.replace(sig, bytes(64)), entry)


def test_require_verified(torrent: bytes) -> None:
    check = signatures.download_check(require_verified=True)
    with pytest.raises(ClientError, match="not verified"):
        check(torrent, signed_entry(torrent, KEY))
    with pytest.raises(ClientError, match="not in the registry"):
        check(None, None)
    check(torrent, signed_entry(torrent, KEY, verified=True))
    check(torrent, entry_of(torrent, verified=True))  # the operator's mark alone
    forged = {**signed_entry(torrent, KEY, verified=True), "publisher_key": OTHER_PUB}
    with pytest.raises(ClientError, match="does not verify"):
        check(torrent, forged)


def test_malformed_entries_from_the_registry() -> None:
    for entry in (
        {"info_hash": "zz" * 32},
        {"info_hash": "ab" * 10, "v1_info_hash": "cd" * 20},
        {"info_hash": 5},
        {},
    ):
        with pytest.raises(ClientError, match="malformed info hashes"):
            signatures.entry_hashes(entry)


@pytest.mark.parametrize("name", sorted(SMALL_ORDER_KEYS))
def test_small_order_keys_from_a_registry_or_a_file_are_refused(torrent: bytes, name: str) -> None:
    """A registry that answers with the identity key and the signature R = identity, S = 0
    (which verifies for every message under a plain Ed25519 check), or that stores a .torrent
    carrying it, gets a refusal before any data is written, even without --require-verified."""
    key = SMALL_ORDER_KEYS[name]
    entry = entry_of(torrent, publisher_key=key, signature=FORGED_SIG.hex(), verified=True)
    with pytest.raises(ClientError, match="refusing the entry's signature: publisher_key: "):
        signatures.verify_entry(entry, torrent, [key])
    forged_file = with_forged_signature(torrent, bytes.fromhex(key))
    with pytest.raises(ClientError, match=r"refusing the stored \.torrent: signature 1: pub: "):
        signatures.verify_entry(entry_of(torrent), forged_file, [key])
    with pytest.raises(ClientError, match="signature 1: pub: "):
        signatures.verify_torrent(forged_file, [key])
    for require_verified in (False, True):
        check = signatures.download_check(require_verified)
        with pytest.raises(ClientError, match="publisher_key"):
            check(torrent, entry)
        with pytest.raises(ClientError, match="pub: "):
            check(forged_file, entry_of(torrent, verified=True))
