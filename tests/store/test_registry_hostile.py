"""What a hostile uploader sends the registry, refused with a 400 that says why and leaving
nothing behind, over real HTTP once per backend (SQLite and PostgreSQL): text people read with
control or bidirectional characters, .torrent files whose names hide in one spelling, hybrids
whose v1 and v2 halves disagree, and Ed25519 keys of small order."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import bencodepy
import pytest
import pytest_twisted
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from registry_kit import Response, Server, error, make_folder_torrent, make_store, make_torrent
from signature_kit import FORGED_SIG, IDENTITY, SMALL_ORDER_KEYS, with_forged_signature

from weightless.torrent import signing
from weightless.torrent.metainfo import parse_torrent

V2 = hashlib.sha256(b"hostile entry").hexdigest()
AUTH = {"X-Weightless-Key": "secret"}
KEY = Ed25519PrivateKey.from_private_bytes(b"h" * 32)
PUB = signing.public_bytes(KEY).hex()
FIELDS = ["name", "publisher", "category", "license", "tags", "description"]
# one member of each unsafe class: C0 (ESC, NUL, BEL), DEL, C1 (CSI, NEL), an override, an isolate
UNSAFE = ["\x1b]52;c;aGk=\x07", "\x00", "\x7f", "\x9b2J", "\x85", "\u202e", "\u2066", "\u202a"]


@pytest_twisted.async_yield_fixture
async def server(store_url: str) -> AsyncIterator[Server]:
    store = make_store(store_url)
    await store.open()
    server = await Server.start(store, registry_key="secret")
    yield server
    await server.stop()
    await store.close()


async def post(server: Server, **fields: Any) -> Response:
    body = {"info_hash": V2, "name": "Model", **fields}
    return await server.post_json(body, AUTH)


async def upload(server: Server, data: bytes, **params: str) -> Response:
    return await server.upload(data, AUTH, **params)


async def nothing_stored(server: Server, info_hash: str = V2) -> None:
    assert (await server.get("/api/registry", info_hash=info_hash)).status == 404
    found = await server.get("/api/registry/search")
    assert found.status == 200 and found.json() == []


# -- text people read


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("bad", UNSAFE, ids=lambda s: f"U+{ord(s.strip('2J;')[0]):04X}")
@pytest_twisted.ensureDeferred
async def test_unsafe_text_in_a_json_body_is_a_400_naming_the_field(
    server: Server, field: str, bad: str
) -> None:
    message = error(await post(server, **{field: f"invoice{bad}fdp.exe"}), 400)
    assert message.startswith(f"{field} must not contain ")
    await nothing_stored(server)


@pytest.mark.parametrize("field", FIELDS)
@pytest_twisted.ensureDeferred
async def test_unsafe_upload_parameters_are_a_400_naming_the_field(
    server: Server, field: str, tmp_path: Path
) -> None:
    data = make_torrent(tmp_path, "model.bin")
    for bad in ("\x1b[2J", "a\u202eb", "\u2069", "\x9d"):
        message = error(await upload(server, data, **{field: bad}), 400)
        assert message.startswith(f"{field} must not contain "), message
    await nothing_stored(server, parse_torrent(data).info_hash_hex)


@pytest_twisted.ensureDeferred
async def test_a_description_keeps_its_line_breaks_and_tabs(server: Server) -> None:
    text = "Line one\r\nLine two\n\tindented"
    assert (await post(server, description=text)).status == 201
    found = (await server.get("/api/registry", info_hash=V2)).json()
    assert found["description"] == text
    for bad in ("a\x1bb", "a\x0bb", "a\x0cb", "a\u202eb"):
        assert error(await post(server, description=bad), 400).startswith("description")


@pytest.mark.parametrize("name", ["モデル 7B", "نموذج", "café: v2 (final)", "a\u200db"])
@pytest_twisted.ensureDeferred
async def test_text_in_any_script_is_kept(server: Server, name: str) -> None:
    assert (await post(server, name=name, tags=name, publisher=name)).status == 201
    assert (await server.get("/api/registry", info_hash=V2)).json()["name"] == name


@pytest_twisted.ensureDeferred
async def test_a_publisher_name_with_an_override_cannot_be_trusted(server: Server) -> None:
    body = json.dumps({"keys": [PUB]}).encode()
    headers = {"Content-Type": "application/json", **AUTH}
    r = await server.request("PUT", "/api/publishers/acme%E2%80%AEgro", body, headers)
    assert error(r, 400).startswith("publisher must not contain U+202E")


# -- file names in .torrent files


@pytest.mark.parametrize(
    ("filename", "char"),
    [("invoice\u202efdp.exe", "202E"), ("a\x1b[31mred", "001B"), ("x\u2067y", "2067")],
)
@pytest_twisted.ensureDeferred
async def test_a_torrent_whose_file_names_are_unsafe_is_refused(
    server: Server, tmp_path: Path, filename: str, char: str
) -> None:
    """Real files with these names, made into torrents by libtorrent: the name of a single
    file, and a path inside a folder, in every spelling libtorrent writes."""
    for data in (
        make_torrent(tmp_path, filename),
        make_folder_torrent(tmp_path, "folder", {f"sub/{filename}": 100, "ok.bin": 100}),
    ):
        message = error(await upload(server, data), 400)
        assert message.startswith("invalid torrent: ") and f"U+{char}" in message, message
        encoded = base64.b64encode(data).decode()
        hashes = parse_torrent_hashes(data)
        message = error(await post(server, torrent_data=encoded, **hashes), 400)
        assert f"U+{char}" in message
        await nothing_stored(server, hashes["info_hash"])


def parse_torrent_hashes(data: bytes) -> dict[str, str]:
    """The info hashes of a torrent our parser refuses, computed apart from it."""
    info = bencodepy.encode(bencodepy.decode(data)[b"info"])
    return {
        "info_hash": hashlib.sha256(info).hexdigest(),
        "v1_info_hash": hashlib.sha1(info).hexdigest(),
    }


@pytest_twisted.ensureDeferred
async def test_an_unsafe_raw_name_behind_a_safe_utf8_spelling_is_refused(
    server: Server, tmp_path: Path
) -> None:
    top = bencodepy.decode(make_folder_torrent(tmp_path, "pkg", {"a.bin": 10, "b.bin": 10}))
    info = top[b"info"]
    info[b"name.utf-8"], info[b"name"] = b"pkg", b".."
    assert "name '..'" in error(await upload(server, bencodepy.encode(top)), 400)
    info[b"name"] = b"pkg"
    info[b"files"][0][b"path.utf-8"] = info[b"files"][0][b"path"]
    info[b"files"][0][b"path"] = [b"..", b"..", b"etc", b"passwd"]
    assert "file 0 path component '..'" in error(await upload(server, bencodepy.encode(top)), 400)
    info[b"files"][0][b"path"] = [b"/etc"]
    assert "not a safe file name" in error(await upload(server, bencodepy.encode(top)), 400)
    await nothing_stored(server, hashlib.sha256(bencodepy.encode(info)).hexdigest())


# -- hybrids


@pytest_twisted.ensureDeferred
async def test_a_hybrid_whose_halves_disagree_is_refused(server: Server, tmp_path: Path) -> None:
    data = make_folder_torrent(tmp_path, "pair", {"a.bin": 5000, "b.bin": 20000})
    top = bencodepy.decode(data)
    files = top[b"info"][b"files"]
    files[0], files[2] = files[2], files[0]  # b.bin first in v1, a.bin first in v2
    swapped = bencodepy.encode(top)
    message = error(await upload(server, swapped), 400)
    assert "the v1 file list and the v2 file tree describe different files" in message
    encoded = base64.b64encode(swapped).decode()
    message = error(await post(server, torrent_data=encoded, **parse_torrent_hashes(swapped)), 400)
    assert "describe different files" in message
    assert (await upload(server, data)).status == 201  # the file as libtorrent made it


@pytest_twisted.ensureDeferred
async def test_lengths_past_int64_are_a_400(server: Server) -> None:
    big = 2**63 - 1
    info = {
        b"files": [{b"length": big, b"path": [b"a"]}, {b"length": big, b"path": [b"b"]}],
        b"name": b"big",
        b"piece length": big,
        b"pieces": bytes(40),
    }
    assert "add up to more than" in error(
        await upload(server, bencodepy.encode({b"info": info})), 400
    )
    info[b"files"][0][b"length"] = 2**63
    assert "length" in error(await upload(server, bencodepy.encode({b"info": info})), 400)


# -- Ed25519 keys


@pytest.mark.parametrize("name", sorted(SMALL_ORDER_KEYS))
@pytest_twisted.ensureDeferred
async def test_small_order_keys_are_refused_everywhere(server: Server, name: str) -> None:
    key = SMALL_ORDER_KEYS[name]
    r = await post(server, publisher="org", publisher_key=key, signature=FORGED_SIG.hex())
    assert error(r, 400).startswith("publisher_key: ")
    await nothing_stored(server)
    headers = {"Content-Type": "application/json", **AUTH}
    for keys in ([key], [PUB, key], [key.upper()]):
        body = json.dumps({"keys": keys}).encode()
        r = await server.request("PUT", "/api/publishers/org", body, headers)
        assert "keys[" in error(r, 400)
    assert (await server.get("/api/publishers/org")).json()["keys"] == []


@pytest_twisted.ensureDeferred
async def test_the_identity_forgery_is_refused_in_post_upload_and_trust(
    server: Server, tmp_path: Path
) -> None:
    """The identity key with the signature R = identity, S = 0 'signs' every torrent under a
    plain Ed25519 check; the registry refuses it at every door."""
    identity = IDENTITY.hex()
    r = await post(server, publisher="org", publisher_key=identity, signature=FORGED_SIG.hex())
    assert "small order" in error(r, 400)
    for version in ("hybrid", "v1", "v2"):
        data = make_torrent(tmp_path, f"w-{version}.bin", version)
        forged = with_forged_signature(data)
        message = error(await upload(server, forged, publisher="org"), 400)
        assert (
            message.startswith("invalid torrent: signature 1: pub: ") and "small order" in message
        )
        encoded = base64.b64encode(forged).decode()
        info = parse_torrent(data)
        hashes = {"info_hash": info.info_hash_hex}
        if info.v2_info_hash and info.v1_info_hash:
            hashes["v1_info_hash"] = info.v1_info_hash_hex
        assert "small order" in error(await post(server, torrent_data=encoded, **hashes), 400)
        await nothing_stored(server, info.info_hash_hex)
    body = json.dumps({"keys": [identity]}).encode()
    headers = {"Content-Type": "application/json", **AUTH}
    r = await server.request("PUT", "/api/publishers/org", body, headers)
    assert "small order" in error(r, 400)


@pytest.mark.parametrize(
    "key",
    [
        "ff" * 32,  # y >= p
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p
        (2).to_bytes(32, "little").hex(),  # y = 2: no x on the curve
        "ab" * 31,
        "zz" * 32,
        " " + "ab" * 31 + "a",
    ],
)
@pytest_twisted.ensureDeferred
async def test_put_publishers_trusts_only_real_keys(server: Server, key: str) -> None:
    headers = {"Content-Type": "application/json", **AUTH}
    good = json.dumps({"keys": [PUB]}).encode()
    assert (await server.request("PUT", "/api/publishers/org", good, headers)).status == 200
    body = json.dumps({"keys": [PUB, key]}).encode()
    message = error(await server.request("PUT", "/api/publishers/org", body, headers), 400)
    assert message.startswith("keys[1]")
    assert (await server.get("/api/publishers/org")).json()["keys"] == [PUB]  # unchanged
