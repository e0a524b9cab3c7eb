"""Tests for weightless.torrent.signing: known answers (computed with the openssl command, not
with this code), every way a signature object can be wrong, and properties over
random keys and hashes."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import bencodepy
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st
from signature_kit import FORGED_SIG, IDENTITY, SMALL_ORDER_KEYS

from weightless.torrent import signing
from weightless.torrent.signing import BadKey, BadSignature, Signature

# RFC 8032, section 7.1, TEST 1: a fixed private key and its public key
SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
PUB = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
KEY = Ed25519PrivateKey.from_private_bytes(SECRET)
BTIH = hashlib.sha1(b"weightless kat v1").digest()
BTMH = hashlib.sha256(b"weightless kat v2").digest()
assert BTIH.hex() == "bc1f49e78fe12627b596903e6eb05309ad420b12"
assert BTMH.hex() == "3f4be362860306c68dbca849cc303571b1623e689ebbad2c0c86cc3d220b0c90"

# The signed bytes, spelled out: prefix, then bencode with keys in order alg, btih, btmh, pub, v.
HEAD = b"weightless:torrent-sig:v1" + b"d" + b"3:alg" + b"7:ed25519"
TAIL = b"3:pub" + b"32:" + PUB + b"1:v" + b"i1e" + b"e"
KNOWN = {
    # name: (btih, btmh, signed bytes, signature by `openssl pkeyutl -sign -rawin`)
    "v1": (
        BTIH,
        None,
        HEAD + b"4:btih" + b"20:" + BTIH + TAIL,
        "831d06946498ee0644b03cf42cb5db9a689c2da6713ca5b40d9ae0a66bb69373"
        "05ee5647db58a533742eef4cbd5a97e0b5a3c016053e16bd0790da30e370bd09",
    ),
    "v2": (
        None,
        BTMH,
        HEAD + b"4:btmh" + b"32:" + BTMH + TAIL,
        "c1dc1b0837af9fd0b205fd32112d388e74e4cf81b58d2d519e1d2079995bb4dd"
        "4a997ac955a01ccfe6fa77865a9506f9aa0457622d4f3654678dfdae29fd8e0c",
    ),
    "hybrid": (
        BTIH,
        BTMH,
        HEAD + b"4:btih" + b"20:" + BTIH + b"4:btmh" + b"32:" + BTMH + TAIL,
        "d076c6b195292b32046bd0776d5e17f7cdad0b6c1a7c763856bbb07ee907dda2"
        "292b83f4d76f0d9a33f2eb12c279d30071f5c25f657fe6d9ea6f7d71d07a5207",
    ),
}


@pytest.mark.parametrize("kind", sorted(KNOWN))
def test_known_answer(kind: str) -> None:
    btih, btmh, signed, sig_hex = KNOWN[kind]
    assert signing.public_bytes(KEY) == PUB
    assert signing.statement(PUB, btih, btmh) == signed
    signature = signing.sign(KEY, btih, btmh)
    assert signature == Signature(PUB, bytes.fromhex(sig_hex))
    signing.verify(signature, btih, btmh)
    assert signature.encode() == (
        b"d3:alg7:ed25519" + b"3:pub32:" + PUB + b"3:sig64:" + bytes.fromhex(sig_hex) + b"1:vi1ee"
    )


@pytest.mark.parametrize("kind", sorted(KNOWN))
def test_a_signature_covers_exactly_its_hashes(kind: str) -> None:
    btih, btmh, _, sig_hex = KNOWN[kind]
    signature = Signature(PUB, bytes.fromhex(sig_hex))
    others = {(BTIH, None), (None, BTMH), (BTIH, BTMH)} - {(btih, btmh)}
    for other_btih, other_btmh in others:
        with pytest.raises(BadSignature, match="does not verify"):
            signing.verify(signature, other_btih, other_btmh)


def test_the_v1_collision_case_fails() -> None:
    """A hybrid signature with the right v2 hash but another v1 hash (a colliding v1 info dict
    paired with a real v2 one) must not verify."""
    good = signing.sign(KEY, BTIH, BTMH)
    other_v1 = hashlib.sha1(b"a colliding info dict").digest()
    with pytest.raises(BadSignature):
        signing.verify(good, other_v1, BTMH)
    # nor does a signature made over the other pair pass for the real one
    with pytest.raises(BadSignature):
        signing.verify(signing.sign(KEY, other_v1, BTMH), BTIH, BTMH)


def test_a_statement_with_unknown_keys_does_not_verify() -> None:
    """A signer that put more into the statement signed something else."""
    for extra in (b"4:name3:foo", b"1:xi1e"):
        body = signing.statement(PUB, BTIH, BTMH)
        # insert in key order: "name" after "btmh", "x" before the closing "e" after "v"
        if extra.startswith(b"4:name"):
            tampered = body.replace(b"3:pub", extra + b"3:pub")
        else:
            tampered = body[:-1] + extra + b"e"
        signature = Signature(PUB, KEY.sign(tampered))
        with pytest.raises(BadSignature):
            signing.verify(signature, BTIH, BTMH)


def test_other_statement_versions_and_algorithms_do_not_verify() -> None:
    body = signing.statement(PUB, BTIH, BTMH)
    for tampered in (
        body.replace(b"1:vi1e", b"1:vi2e"),
        body.replace(b"7:ed25519", b"7:ed448xx"),
        body.replace(b"weightless:torrent-sig:v1", b"weightless:torrent-sig:v2"),
        body[len(signing.PREFIX) :],  # no prefix at all
    ):
        with pytest.raises(BadSignature):
            signing.verify(Signature(PUB, KEY.sign(tampered)), BTIH, BTMH)


def good_object() -> dict[bytes, Any]:
    signature = signing.sign(KEY, BTIH, BTMH)
    return {b"alg": b"ed25519", b"pub": signature.pub, b"sig": signature.sig, b"v": 1}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({b"alg": b"ed448"}, "alg"),
        ({b"alg": b"ED25519"}, "alg"),
        ({b"alg": 1}, "alg"),
        ({b"v": 2}, "v must be 1"),
        ({b"v": b"1"}, "v must be 1"),
        ({b"pub": PUB[:31]}, "pub must be 32"),
        ({b"pub": PUB + b"\0"}, "pub must be 32"),
        ({b"pub": 5}, "pub must be 32"),
        ({b"sig": bytes(63)}, "sig must be 64"),
        ({b"sig": bytes(65)}, "sig must be 64"),
        ({b"sig": [b"x"]}, "sig must be 64"),
        ({b"extra": b"x"}, "unknown keys"),
    ],
)
def test_malformed_signature_objects_are_refused(change: dict[bytes, Any], message: str) -> None:
    signing.verify(signing.from_object(good_object()), BTIH, BTMH)
    with pytest.raises(BadSignature, match=message):
        signing.from_object({**good_object(), **change})


@pytest.mark.parametrize("missing", [b"alg", b"pub", b"sig", b"v"])
def test_a_signature_object_missing_a_key_is_refused(missing: bytes) -> None:
    value = good_object()
    del value[missing]
    with pytest.raises(BadSignature):
        signing.from_object(value)


def test_not_a_dictionary() -> None:
    for value in (b"x", 1, [good_object()], None):
        with pytest.raises(BadSignature, match="dictionary"):
            signing.from_object(value)


def test_a_signature_under_another_key_fails() -> None:
    """``pub`` replaced by another key: the signature no longer matches it."""
    other = signing.public_bytes(Ed25519PrivateKey.generate())
    signature = signing.sign(KEY, BTIH, BTMH)
    with pytest.raises(BadSignature, match=other.hex()):
        signing.verify(Signature(other, signature.sig), BTIH, BTMH)


def test_truncated_or_bad_values() -> None:
    signature = signing.sign(KEY, BTIH, BTMH)
    with pytest.raises(BadSignature, match="sig must be 64"):
        signing.verify(Signature(PUB, signature.sig[:63]), BTIH, BTMH)
    with pytest.raises(BadKey, match="not an Ed25519 public key"):
        signing.verify(Signature(PUB[:31], signature.sig), BTIH, BTMH)
    for btih, btmh in ((BTIH[:19], BTMH), (BTIH, BTMH[:31]), (None, None), (BTMH, None)):
        with pytest.raises(ValueError):
            signing.statement(PUB, btih, btmh)


def test_hex_form() -> None:
    signature = signing.sign(KEY, BTIH, BTMH)
    assert signing.from_hex(PUB.hex(), signature.sig.hex().upper()) == signature
    for pub, sig, message in (
        (PUB.hex()[:-2], signature.sig.hex(), "publisher_key must be 64"),
        (PUB.hex(), signature.sig.hex()[:-2], "signature must be 128"),
        ("zz" * 32, signature.sig.hex(), "hex"),
        (PUB.hex(), "0" * 127, "hex"),
    ):
        with pytest.raises(BadSignature, match=message):
            signing.from_hex(pub, sig)


# -- properties

keys = st.binary(min_size=32, max_size=32).map(Ed25519PrivateKey.from_private_bytes)
v1s = st.binary(min_size=20, max_size=20)
v2s = st.binary(min_size=32, max_size=32)
hash_sets = st.one_of(st.tuples(v1s, st.none()), st.tuples(st.none(), v2s), st.tuples(v1s, v2s))


@given(keys, hash_sets)
def test_sign_then_verify_and_round_trip(key: Ed25519PrivateKey, hashes: Any) -> None:
    btih, btmh = hashes
    signature = signing.sign(key, btih, btmh)
    signing.verify(signature, btih, btmh)
    assert signing.sign(key, btih, btmh) == signature  # deterministic
    decoded = bencodepy.decode(signature.encode())
    assert signing.from_object(decoded) == signature
    assert signing.from_hex(signature.public_key_hex, signature.signature_hex) == signature
    # the statement is the prefix and canonical bencode of its dictionary
    body = signing.statement(signature.pub, btih, btmh)
    assert body.startswith(signing.PREFIX)
    assert (
        bencodepy.encode(bencodepy.decode(body[len(signing.PREFIX) :]))
        == body[len(signing.PREFIX) :]
    )


@given(keys, hash_sets, st.data())
def test_any_changed_bit_fails(key: Ed25519PrivateKey, hashes: Any, data: st.DataObject) -> None:
    btih, btmh = hashes
    signature = signing.sign(key, btih, btmh)
    which = data.draw(st.sampled_from(["sig", "pub", "btih", "btmh"]))

    def flip(value: bytes) -> bytes:
        bit = data.draw(st.integers(0, len(value) * 8 - 1))
        out = bytearray(value)
        out[bit // 8] ^= 1 << (bit % 8)
        return bytes(out)

    if which == "sig":
        signature = Signature(signature.pub, flip(signature.sig))
    elif which == "pub":
        signature = Signature(flip(signature.pub), signature.sig)
    elif which == "btih":
        btih = flip(btih) if btih is not None else data.draw(v1s)
    else:
        btmh = flip(btmh) if btmh is not None else data.draw(v2s)
    with pytest.raises(BadSignature):
        signing.verify(signature, btih, btmh)


@given(st.binary(max_size=200))
def test_from_object_never_raises_anything_else(raw: bytes) -> None:
    try:
        value = bencodepy.decode(raw)
    except Exception:
        return
    with contextlib.suppress(BadSignature):
        signing.from_object(value)


# -- public keys: canonical points that are not of small order (RFC 8032 5.1.3)

P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P


def _on_curve(y: int) -> bool:
    """Whether some x has -x^2 + y^2 = 1 + d x^2 y^2 (Euler's criterion on x^2): written apart
    from the module's square root."""
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    return x2 == 0 or pow(x2, (P - 1) // 2, P) == 1


NOT_POINTS = [y for y in range(2, 60) if not _on_curve(y)][:6]
ON_CURVE = [y for y in range(2, 60) if _on_curve(y)][:6]


@pytest.mark.parametrize("name", sorted(SMALL_ORDER_KEYS))
def test_small_order_keys_are_refused_everywhere(name: str) -> None:
    pub = bytes.fromhex(SMALL_ORDER_KEYS[name])
    Ed25519PublicKey.from_public_bytes(pub)  # cryptography takes it: why the check exists
    with pytest.raises(BadKey):
        signing.check_public_key(pub)
    with pytest.raises(BadKey, match="publisher_key"):
        signing.from_hex(pub.hex(), FORGED_SIG.hex())
    with pytest.raises(BadKey, match="pub: "):
        signing.from_object({**good_object(), b"pub": pub})
    with pytest.raises(BadKey):
        signing.verify(Signature(pub, FORGED_SIG), BTIH, BTMH)
    with pytest.raises(BadKey, match="trusted"):
        signing.public_key_from_hex(pub.hex().upper(), "trusted")


def test_the_identity_forgery_verifies_in_cryptography_and_nowhere_here() -> None:
    """The identity key with R = identity, S = 0 'signs' every message under cryptography."""
    key = Ed25519PublicKey.from_public_bytes(IDENTITY)
    for message in (b"", b"any torrent", signing.statement(IDENTITY, BTIH, BTMH)):
        key.verify(FORGED_SIG, message)  # no InvalidSignature
    for btih, btmh in ((BTIH, None), (None, BTMH), (BTIH, BTMH)):
        with pytest.raises(BadKey, match="small order"):
            signing.verify(Signature(IDENTITY, FORGED_SIG), btih, btmh)


@pytest.mark.parametrize("offset", range(19))
@pytest.mark.parametrize("sign", [0, 1])
def test_y_at_or_above_p_is_not_canonical(offset: int, sign: int) -> None:
    pub = ((P + offset) | sign << 255).to_bytes(32, "little")
    with pytest.raises(BadKey, match="canonical"):
        signing.check_public_key(pub)


@pytest.mark.parametrize("y", NOT_POINTS)
@pytest.mark.parametrize("sign", [0, 1])
def test_bytes_that_are_no_point_are_refused(y: int, sign: int) -> None:
    with pytest.raises(BadKey, match="canonical"):
        signing.check_public_key((y | sign << 255).to_bytes(32, "little"))


@pytest.mark.parametrize("y", ON_CURVE)
@pytest.mark.parametrize("sign", [0, 1])
def test_large_order_points_are_keys(y: int, sign: int) -> None:
    signing.check_public_key((y | sign << 255).to_bytes(32, "little"))


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_keys_of_other_lengths(length: int) -> None:
    with pytest.raises(BadKey, match="32 bytes"):
        signing.check_public_key(bytes(length))


@pytest.mark.parametrize(
    "text", ["", "ab" * 31, "ab" * 33, "zz" * 32, " " + "ab" * 31 + "a", "ab " * 21 + "a", 5, None]
)
def test_hex_keys_must_be_exactly_64_hex_characters(text: Any) -> None:
    with pytest.raises(BadKey, match="64 hex"):
        signing.public_key_from_hex(text, "publisher_key")


@given(keys)
def test_every_generated_key_is_accepted(key: Ed25519PrivateKey) -> None:
    pub = signing.public_bytes(key)
    signing.check_public_key(pub)
    assert signing.public_key_from_hex(pub.hex().upper()) == pub


@given(st.binary(min_size=32, max_size=32))
def test_acceptance_agrees_with_an_independent_check(pub: bytes) -> None:
    """Accepted exactly when y < p, y is on the curve, x = 0 has no sign bit, and the point is
    not one of the small-order ones."""
    y, sign = int.from_bytes(pub, "little") & ((1 << 255) - 1), pub[31] >> 7
    expected = (
        y < P
        and _on_curve(y)
        and not (sign and y in (1, P - 1))
        and pub.hex() not in SMALL_ORDER_KEYS.values()
    )
    try:
        signing.check_public_key(pub)
    except BadKey:
        assert not expected
    else:
        assert expected


L = 2**252 + 27742317777372353535851937790883648493  # the order of the base point


@pytest.mark.parametrize("multiple", [1, 2, 7, 15])
def test_a_non_canonical_s_is_refused(multiple: int) -> None:
    """S + k*L satisfies the verification equation as S does (it is the same scalar mod L),
    so a verifier that did not insist on S < L would take a second signature for the same
    statement (malleability). RFC 8032 5.1.7 requires S < L."""
    good = signing.sign(KEY, BTIH, BTMH)
    s = int.from_bytes(good.sig[32:], "little") + multiple * L
    assert s < 2**256
    bad = Signature(PUB, good.sig[:32] + s.to_bytes(32, "little"))
    signing.verify(good, BTIH, BTMH)
    with pytest.raises(BadSignature, match="does not verify"):
        signing.verify(bad, BTIH, BTMH)
