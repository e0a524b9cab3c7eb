"""What the registry's checks (weightless.registry.entries, parse_trusted_keys) take from a
client: text people read without control or bidirectional characters, in every field of a
JSON body and of an upload's parameters, and Ed25519 keys that are points of large order."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from registry_kit import make_torrent
from signature_kit import FORGED_SIG, SMALL_ORDER_KEYS

from weightless.registry.entries import (
    Invalid,
    check_key,
    check_readable,
    parse_json_body,
    parse_upload,
)
from weightless.registry.service import parse_trusted_keys
from weightless.torrent import signing

V2 = hashlib.sha256(b"text").hexdigest()
FIELDS = ["name", "description", "publisher", "license", "category", "tags"]
# every class: C0 (NUL, BEL, ESC, the line breaks and tab outside a description, US), DEL,
# C1 (PAD, NEL, CSI, OSC, APC), the embeddings and overrides, the isolates
UNSAFE = [
    "\x00", "\x07", "\x1b", "\n", "\r", "\t", "\x0b", "\x1f", "\x7f",
    "\x80", "\x85", "\x9b", "\x9d", "\x9f",
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
    "\u2066", "\u2067", "\u2068", "\u2069",
]  # fmt: skip
KEY = Ed25519PrivateKey.from_private_bytes(b"t" * 32)
PUB = signing.public_bytes(KEY).hex()


def body(**fields: Any) -> bytes:
    return json.dumps({"info_hash": V2, "name": "Model", **fields}).encode()


def allowed(field: str, char: str) -> bool:
    return field == "description" and char in "\n\r\t"


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("char", UNSAFE, ids=lambda c: f"U+{ord(c):04X}")
def test_every_field_refuses_every_unsafe_class_in_json(field: str, char: str) -> None:
    text = f"invoice{char}fdp.exe"
    if allowed(field, char):
        assert getattr(parse_json_body(body(**{field: text})).entry, field) == text
        return
    with pytest.raises(Invalid, match=rf"^{field} must not contain (U\+{ord(char):04X}|NUL)"):
        parse_json_body(body(**{field: text}))


@pytest.fixture(scope="module")
def torrent(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_torrent(tmp_path_factory.mktemp("t"), "model.bin")


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("char", UNSAFE, ids=lambda c: f"U+{ord(c):04X}")
def test_every_upload_parameter_refuses_every_unsafe_class(
    torrent: bytes, field: str, char: str
) -> None:
    text = f"a{char}b"
    if allowed(field, char):
        assert getattr(parse_upload(torrent, {field: text}).entry, field) == text
        return
    with pytest.raises(Invalid, match=rf"^{field} must not contain"):
        parse_upload(torrent, {field: text})


@pytest.mark.parametrize(
    "text", ["", "plain", "モデル", "نموذج", "a\u200db", "tab-free — dash", "x" * 10_000, "🚀"]
)
def test_readable_text_is_kept(text: str) -> None:
    for field in FIELDS:
        assert check_readable(text, field) == text


def test_the_refusal_names_the_character_and_the_field() -> None:
    with pytest.raises(Invalid, match=r"^tags must not contain U\+2066 \(control and bidi"):
        check_readable("a,\u2066b", "tags")
    with pytest.raises(Invalid, match="name must be a string"):
        check_readable(5, "name")


def test_a_torrent_named_unsafely_is_refused_through_its_name(tmp_path: Path) -> None:
    data = make_torrent(tmp_path, "invoice\u202efdp.exe")
    with pytest.raises(Invalid, match=r"invalid torrent: name contains U\+202E"):
        parse_upload(data, {})
    with pytest.raises(Invalid, match=r"name must not contain U\+202E"):
        parse_upload(make_torrent(tmp_path, "ok.bin"), {"name": "invoice\u202efdp.exe"})


@pytest.mark.parametrize("name", sorted(SMALL_ORDER_KEYS))
def test_small_order_keys(name: str) -> None:
    key = SMALL_ORDER_KEYS[name]
    with pytest.raises(Invalid, match=r"^keys"):
        check_key(key, "keys")
    with pytest.raises(Invalid, match=r"^keys\[1\]: "):
        parse_trusted_keys(json.dumps({"keys": [PUB, key]}).encode())
    with pytest.raises(Invalid, match=r"^publisher_key: "):
        parse_json_body(body(publisher_key=key, signature=FORGED_SIG.hex()))


def test_trusted_keys_are_lowercased_sorted_and_unique() -> None:
    other = signing.public_bytes(Ed25519PrivateKey.from_private_bytes(b"u" * 32)).hex()
    sent = {"keys": [PUB.upper(), other, PUB]}
    assert parse_trusted_keys(json.dumps(sent).encode()) == sorted({PUB, other})
    assert check_key(PUB.upper()) == PUB
