"""Signed .torrent files (weightless.torrent.metainfo with weightless.torrent.signing): signing
splices bytes and never moves a hash, every signature in a file is checked at parse, and a file
signed here verifies by a check written from the contract's byte layout alone."""

from __future__ import annotations

from pathlib import Path

import bencodepy
import libtorrent as lt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from registry_kit import make_torrent
from signature_kit import from_scratch_verify

from weightless.torrent import signing
from weightless.torrent.metainfo import (
    MAX_SIGNATURES,
    TorrentError,
    add_signature,
    parse_torrent,
    sign_torrent,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


@pytest.fixture(scope="module", params=["hybrid", "v1", "v2"])
def torrent(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_torrent(tmp_path_factory.mktemp("data"), "weights.bin", request.param)


def test_signed_here_verifies_from_scratch(torrent: bytes) -> None:
    signed = sign_torrent(sign_torrent(torrent, KEY), OTHER)
    assert from_scratch_verify(signed) == [signing.public_bytes(KEY), signing.public_bytes(OTHER)]
    # and the from-scratch check is not a pushover
    bad = bytearray(signed)
    at = signed.rindex(b"3:sig64:") + 8
    bad[at] ^= 1
    with pytest.raises(InvalidSignature):
        from_scratch_verify(bytes(bad))


def test_signing_leaves_info_and_both_hashes_untouched(torrent: bytes) -> None:
    before = parse_torrent(torrent)
    signed = sign_torrent(torrent, KEY)
    after = parse_torrent(signed)
    assert (after.v1_info_hash, after.v2_info_hash) == (before.v1_info_hash, before.v2_info_hash)
    assert [s.pub for s in after.signatures] == [signing.public_bytes(KEY)]
    decoded, original = bencodepy.decode(signed), bencodepy.decode(torrent)
    assert decoded.pop(b"signatures") == [bencodepy.decode(after.signatures[0].encode())]
    assert decoded == original  # nothing else changed
    assert bencodepy.encode(bencodepy.decode(signed)) == signed  # still canonical: keys in order
    # libtorrent reads it, with the same hashes
    ti = lt.torrent_info(lt.bdecode(signed))
    hashes = ti.info_hashes()
    if before.v1_info_hash:
        assert bytes(hashes.v1.to_bytes()) == before.v1_info_hash
    if before.v2_info_hash:
        assert bytes(hashes.v2.to_bytes()) == before.v2_info_hash


def test_a_second_key_appends_and_one_key_signs_once(torrent: bytes) -> None:
    once = sign_torrent(torrent, KEY)
    twice = sign_torrent(once, OTHER)
    assert twice.startswith(once[: once.index(b"10:signatures")])
    assert len(parse_torrent(twice).signatures) == 2
    for data in (once, twice):
        with pytest.raises(TorrentError, match="already signed by key"):
            sign_torrent(data, KEY)


def test_signatures_go_in_key_order(torrent: bytes) -> None:
    """``signatures`` goes before a later key (``url-list``) so the file stays sorted."""
    with_url = torrent[:-1] + b"8:url-list" + b"l17:http://example/x/e" + b"e"
    signed = sign_torrent(with_url, KEY)
    assert bencodepy.encode(bencodepy.decode(signed)) == signed
    assert signed.index(b"10:signatures") < signed.index(b"8:url-list")


def test_a_signature_of_another_torrent_is_not_added(torrent: bytes, tmp_path: Path) -> None:
    other = parse_torrent(make_torrent(tmp_path, "other.bin"))
    foreign = signing.sign(KEY, other.v1_info_hash, other.v2_info_hash)
    with pytest.raises(TorrentError, match="does not verify"):
        add_signature(torrent, foreign)


def tamper(signed: bytes, old: bytes, new: bytes) -> bytes:
    at = signed.index(b"10:signatures")
    assert old in signed[at:]
    return signed[:at] + signed[at:].replace(old, new, 1)


def test_tampered_signatures_make_the_file_invalid(torrent: bytes, tmp_path: Path) -> None:
    signed = sign_torrent(torrent, KEY)
    obj = parse_torrent(signed).signatures[0]
    other_pub = signing.public_bytes(OTHER)
    flipped = bytes([obj.sig[0] ^ 1]) + obj.sig[1:]
    cases = {
        "does not verify": [
            tamper(signed, obj.sig, flipped),
            tamper(signed, obj.pub, other_pub),
        ],
        "alg": [tamper(signed, b"7:ed25519", b"7:ed25518")],
        "v must be 1": [tamper(signed, b"1:vi1e", b"1:vi2e")],
        "sig must be 64": [tamper(signed, b"3:sig64:" + obj.sig, b"3:sig63:" + obj.sig[:63])],
        "unknown keys": [tamper(signed, b"1:vi1ee", b"1:vi1e1:xi0ee")],
        "must be a list": [tamper(signed, b"l" + obj.encode() + b"e", b"3:abc")],
        "signs twice": [tamper(signed, obj.encode(), obj.encode() * 2)],
    }
    other = make_torrent(tmp_path, "another.bin")
    cases["does not verify"].append(
        torrent[:-1]
        + b"10:signatures"
        + b"l"
        + sign_torrent(other, KEY)[-(len(obj.encode()) + 2) :]
    )
    for message, files in cases.items():
        for data in files:
            with pytest.raises(TorrentError, match=message):
                parse_torrent(data)


def test_truncated_signature_objects(torrent: bytes) -> None:
    signed = sign_torrent(torrent, KEY)
    at = signed.index(b"10:signatures")
    for cut in range(at + len(b"10:signaturesl") + 1, len(signed) - 1, 7):
        with pytest.raises(TorrentError):
            parse_torrent(signed[:cut] + b"e")


def test_meta_says_whether_signed(torrent: bytes) -> None:
    assert parse_torrent(torrent).meta()["signed"] is False
    assert parse_torrent(torrent).meta()["public_keys"] == []
    meta = parse_torrent(sign_torrent(torrent, KEY)).meta()
    assert meta["signed"] is True
    assert meta["public_keys"] == [signing.public_bytes(KEY).hex()]


def test_limits_and_skipping_verification_of_a_stored_file(torrent: bytes) -> None:
    signed = sign_torrent(torrent, KEY)
    sig = parse_torrent(signed).signatures[0].sig
    tampered = signed.replace(sig, bytes([sig[0] ^ 1]) + sig[1:])
    # a file checked when it was stored: listed without verifying again, shape still checked
    assert parse_torrent(tampered, verify_signatures=False).signatures[0].sig != sig
    with pytest.raises(TorrentError, match="alg"):
        parse_torrent(signed.replace(b"7:ed25519", b"7:ed25518"), verify_signatures=False)
    many = torrent
    for i in range(MAX_SIGNATURES):
        many = sign_torrent(many, Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32))
    assert len(parse_torrent(many).signatures) == MAX_SIGNATURES
    with pytest.raises(TorrentError, match=f"at most {MAX_SIGNATURES} signatures"):
        sign_torrent(many, Ed25519PrivateKey.from_private_bytes(b"\xff" * 32))
    obj = parse_torrent(sign_torrent(torrent, OTHER)).signatures[0].encode()
    too_many = many.replace(b"10:signaturesl", b"10:signaturesl" + obj)
    with pytest.raises(TorrentError, match=f"more than {MAX_SIGNATURES} signatures"):
        parse_torrent(too_many)
