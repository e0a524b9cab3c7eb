"""Fuzz harness: Ed25519 public keys and signature objects (weightless.torrent.signing).

Only BadKey/BadSignature may come out of the key and signature checks. A key
`check_public_key` accepts must be the canonical encoding of a point that is not of small
order, by a check written apart from the module (Euler's criterion for x^2, y < p, the
small-order encodings listed by libsodium); one it refuses must fail that check too. Run it
alone with ``python tests/fuzz/fuzz_keys.py tests/fuzz/corpus/keys``."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["weightless"]):
    from weightless.torrent import signing
    from weightless.torrent.bdecode import BdecodeError, bdecode

P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P
SMALL_ORDER = {
    bytes.fromhex(h)
    for h in (
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    )
}
BTIH, BTMH = b"i" * 20, b"m" * 32


def _expected(pub: bytes) -> bool:
    if len(pub) != 32:
        return False
    y, sign = int.from_bytes(pub, "little") & ((1 << 255) - 1), pub[31] >> 7
    if y >= P:
        return False
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return not sign and pub not in SMALL_ORDER
    return pow(x2, (P - 1) // 2, P) == 1 and pub not in SMALL_ORDER


def TestOneInput(data: bytes) -> None:
    for pub in (data[:32], data):
        try:
            signing.check_public_key(pub)
        except signing.BadKey:
            accepted = False
        else:
            accepted = True
        if accepted != _expected(pub):
            raise AssertionError(f"check_public_key({pub.hex()}) gave {accepted}")
    text = data.decode("latin-1")
    try:
        pub = signing.public_key_from_hex(text)
    except signing.BadKey:
        pass
    else:
        if pub.hex() != text.lower() or not _expected(pub):
            raise AssertionError(f"public_key_from_hex({text!r}) took a bad key")
    try:
        signature = signing.from_hex(text[:64], text[64:])
        signing.verify(signature, BTIH, BTMH)
    except signing.BadSignature:
        pass
    try:
        value, _ = bdecode(data, 1000)
    except BdecodeError:
        return
    try:
        signature = signing.from_object(value)
    except signing.BadSignature:
        return
    if not _expected(signature.pub):
        raise AssertionError(f"from_object took the key {signature.pub.hex()}")
    for btih, btmh in ((BTIH, None), (None, BTMH), (BTIH, BTMH)):
        try:
            signing.verify(signature, btih, btmh)
        except signing.BadSignature:
            continue


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
