"""Signed entries, trusted publisher keys and verified entries through the /api endpoints, over
real HTTP, once per backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from registry_kit import Response, Server, error, make_store, make_torrent, raw_sql
from signature_kit import FORGED_SIG, IDENTITY, SMALL_ORDER_KEYS

from weightless.registry import postgres, sqlite
from weightless.registry.entries import Entry
from weightless.registry.migrations import migrations
from weightless.torrent import signing
from weightless.torrent.metainfo import parse_torrent, sign_torrent

V2 = hashlib.sha256(b"signed entry").hexdigest()
V1 = hashlib.sha1(b"signed entry").hexdigest()
OTHER_V1 = hashlib.sha1(b"a colliding v1 info dict").hexdigest()
KEY = Ed25519PrivateKey.from_private_bytes(b"k" * 32)
OTHER = Ed25519PrivateKey.from_private_bytes(b"o" * 32)
PUB = signing.public_bytes(KEY).hex()
OTHER_PUB = signing.public_bytes(OTHER).hex()
AUTH = {"X-Weightless-Key": "secret"}
JSON_TYPE = {"Content-Type": "application/json"}


def signed(key: Ed25519PrivateKey, v1: str | None, v2: str | None) -> dict[str, str]:
    s = signing.sign(key, bytes.fromhex(v1) if v1 else None, bytes.fromhex(v2) if v2 else None)
    return {"publisher_key": s.public_key_hex, "signature": s.signature_hex}


@pytest_twisted.async_yield_fixture
async def server(store_url: str) -> AsyncIterator[Server]:
    store = make_store(store_url)
    await store.open()
    server = await Server.start(store, registry_key="secret")
    yield server
    await server.stop()
    await store.close()


async def post(server: Server, **fields: Any) -> Response:
    body = {"info_hash": V2, "v1_info_hash": V1, "name": "Model", "publisher": "org", **fields}
    return await server.post_json({k: v for k, v in body.items() if v is not None}, AUTH)


async def entry(server: Server, info_hash: str = V2) -> dict[str, Any]:
    r = await server.get("/api/registry", info_hash=info_hash)
    assert r.status == 200, r.body
    found: dict[str, Any] = r.json()
    return found


async def trust(server: Server, publisher: str, keys: list[str], **kw: Any) -> Response:
    headers = {"Content-Type": "application/json", **kw.get("headers", AUTH)}
    body = json.dumps({"keys": keys}).encode()
    return await server.request("PUT", f"/api/publishers/{publisher}", body, headers)


async def mark(server: Server, info_hash: str, value: str, **kw: Any) -> Response:
    headers = {"Content-Type": "application/json", **kw.get("headers", AUTH)}
    return await server.request(
        "POST", "/api/registry/verify", headers=headers, info_hash=info_hash, verified=value
    )


async def upload(server: Server, data: bytes, **params: str) -> Response:
    headers = {"Content-Type": "application/x-bittorrent", **AUTH}
    return await server.request("POST", "/api/registry/torrent", data, headers, **params)


# -- signatures on entries


@pytest_twisted.ensureDeferred
async def test_a_signed_entry_shows_its_key_and_signature(server: Server) -> None:
    sig = signed(KEY, V1, V2)
    assert (await post(server, **sig)).status == 201
    for h in (V2, V1):
        found = await entry(server, h)
        assert found["publisher_key"] == PUB and found["signature"] == sig["signature"]
        assert found["verified"] is False  # signed, but no key is trusted for "org" yet
    # upper-case hex is accepted and stored lower-case
    upper = {k: v.upper() for k, v in sig.items()}
    assert (await post(server, **upper)).status == 201
    assert (await entry(server))["signature"] == sig["signature"]


@pytest_twisted.ensureDeferred
async def test_an_unsigned_entry_has_neither_key(server: Server) -> None:
    assert (await post(server)).status == 201
    found = await entry(server)
    assert "publisher_key" not in found and "signature" not in found


@pytest_twisted.ensureDeferred
async def test_both_or_neither(server: Server) -> None:
    sig = signed(KEY, V1, V2)
    for fields in ({"publisher_key": PUB}, {"signature": sig["signature"]}):
        assert "both or neither" in error(await post(server, **fields), 400)
    for fields, message in (
        ({"publisher_key": PUB[:-2], "signature": sig["signature"]}, "64 hex"),
        ({"publisher_key": PUB, "signature": sig["signature"][:-2]}, "128 hex"),
        ({"publisher_key": "zz" * 32, "signature": sig["signature"]}, "hex"),
        ({"publisher_key": 5, "signature": sig["signature"]}, "hex strings"),
    ):
        assert message in error(await post(server, **fields), 400)
    r = await server.get("/api/registry", info_hash=V2)
    assert r.status == 404  # nothing was written


@pytest_twisted.ensureDeferred
async def test_forged_signatures_are_refused_and_change_nothing(server: Server) -> None:
    good = signed(KEY, V1, V2)
    assert (await post(server, **good)).status == 201
    forged = [
        # another key's signature under this key's name
        {"publisher_key": PUB, "signature": signed(OTHER, V1, V2)["signature"]},
        # a signature of other hashes
        signed(KEY, V1, hashlib.sha256(b"x").hexdigest()),
        # the v1 collision: right v2 hash, another v1 hash
        signed(KEY, OTHER_V1, V2),
        # the v2 hash alone does not cover a hybrid entry
        signed(KEY, None, V2),
        # one bit off
        {**good, "signature": f"{int(good['signature'][0], 16) ^ 1:x}" + good["signature"][1:]},
    ]
    for fields in forged:
        message = error(await post(server, name="Forged", **fields), 400)
        assert "signature refused" in message and "does not verify" in message
    found = await entry(server)
    assert found["name"] == "Model" and found["signature"] == good["signature"]


@pytest_twisted.ensureDeferred
async def test_a_signature_covers_the_stored_v1_hash(server: Server) -> None:
    assert (await post(server)).status == 201  # a hybrid entry: V2 with V1
    # posted without v1_info_hash: the signature must still cover the stored V1
    assert (await post(server, v1_info_hash=None, **signed(KEY, None, V2))).status == 400
    assert (await post(server, v1_info_hash=None, **signed(KEY, V1, V2))).status == 201
    assert (await entry(server))["publisher_key"] == PUB


@pytest_twisted.ensureDeferred
async def test_v1_and_v2_only_entries(server: Server) -> None:
    v1_only = hashlib.sha1(b"v1 only").hexdigest()
    r = await server.post_json(
        {"info_hash": v1_only, "name": "old", **signed(KEY, v1_only, None)}, AUTH
    )
    assert r.status == 201
    assert (await entry(server, v1_only))["publisher_key"] == PUB
    r = await server.post_json({"info_hash": V2, "name": "new", **signed(KEY, None, V2)}, AUTH)
    assert r.status == 201
    assert (await entry(server, V2))["publisher_key"] == PUB
    # a v1-only entry's signature is over btih, not btmh
    other = hashlib.sha1(b"v1 other").hexdigest()
    r = await server.post_json(
        {"info_hash": other, "name": "x", **signed(KEY, None, hashlib.sha256(b"?").hexdigest())},
        AUTH,
    )
    assert r.status == 400


@pytest_twisted.ensureDeferred
async def test_a_later_post_keeps_the_signature_until_the_hashes_change(server: Server) -> None:
    await trust(server, "org", [PUB])
    assert (await post(server, **signed(KEY, V1, V2))).status == 201
    assert (await post(server, description="edited")).status == 201
    found = await entry(server)
    assert found["signature"] and found["verified"] is True and found["description"] == "edited"
    # a new v1_info_hash is another torrent: the old signature does not cover it
    assert (await post(server, v1_info_hash=OTHER_V1)).status == 201
    found = await entry(server)
    assert "signature" not in found and found["verified"] is False


# -- the raw upload and the stored file


@pytest_twisted.ensureDeferred
async def test_upload_takes_the_signature_from_the_file(server: Server, tmp_path: Path) -> None:
    data = sign_torrent(make_torrent(tmp_path, "weights.bin"), KEY)
    info = parse_torrent(data)
    r = await upload(server, data, publisher="org")
    assert r.status == 201, r.body
    found = await entry(server, info.info_hash_hex)
    assert found["publisher_key"] == PUB
    assert found["signature"] == info.signatures[0].signature_hex
    # the stored file keeps its signatures, byte for byte; /meta says it is signed
    stored = await server.get("/api/registry/torrent", info_hash=info.info_hash_hex)
    assert stored.body == data
    meta = (await server.get("/api/registry/meta", info_hash=info.info_hash_hex)).json()
    assert meta["signed"] is True and meta["public_keys"] == [PUB]


@pytest_twisted.ensureDeferred
async def test_upload_with_tampered_signatures_is_refused(server: Server, tmp_path: Path) -> None:
    data = sign_torrent(make_torrent(tmp_path, "weights.bin"), KEY)
    info = parse_torrent(data)
    sig = info.signatures[0]
    at = data.index(b"10:signatures")
    tampered = [
        data[:at] + data[at:].replace(sig.sig, bytes([sig.sig[0] ^ 1]) + sig.sig[1:]),
        data[:at] + data[at:].replace(sig.pub, signing.public_bytes(OTHER)),
        data[:at] + data[at:].replace(b"7:ed25519", b"7:ed448xx"),
        data[:at] + data[at:].replace(b"1:vi1e", b"1:vi9e"),
    ]
    for bad in tampered:
        assert bad != data
        message = error(await upload(server, bad), 400)
        assert "invalid torrent: signature 1" in message
        body = json.dumps(
            {
                "info_hash": info.info_hash_hex,
                "name": "x",
                "torrent_data": base64.b64encode(bad).decode(),
            }
        )
        r = await server.request(
            "POST", "/api/registry", body.encode(), {"Content-Type": "application/json", **AUTH}
        )
        assert "signature 1" in error(r, 400)
    assert (await server.get("/api/registry", info_hash=info.info_hash_hex)).status == 404


@pytest_twisted.ensureDeferred
async def test_json_with_a_signed_file(server: Server, tmp_path: Path) -> None:
    data = sign_torrent(sign_torrent(make_torrent(tmp_path, "w.bin"), OTHER), KEY)
    info = parse_torrent(data)
    body = {
        "info_hash": info.info_hash_hex,
        "name": "w",
        "publisher": "org",
        "torrent_data": base64.b64encode(data).decode(),
    }
    assert (await server.post_json(body, AUTH)).status == 201
    assert (await entry(server, info.info_hash_hex))["publisher_key"] == OTHER_PUB  # the first
    # of several signatures, the one by a key trusted for the publisher
    await trust(server, "org", [PUB])
    assert (await server.post_json(body, AUTH)).status == 201
    found = await entry(server, info.info_hash_hex)
    assert found["publisher_key"] == PUB and found["verified"] is True


# -- trust and the verified flag


@pytest_twisted.ensureDeferred
async def test_trusting_a_key_verifies_the_publishers_entries(server: Server) -> None:
    assert (await post(server, **signed(KEY, V1, V2))).status == 201
    theirs = hashlib.sha256(b"theirs").hexdigest()
    r = await server.post_json(
        {"info_hash": theirs, "name": "T", "publisher": "them", **signed(KEY, None, theirs)}, AUTH
    )
    assert r.status == 201
    unsigned = hashlib.sha256(b"unsigned").hexdigest()
    await server.post_json({"info_hash": unsigned, "name": "U", "publisher": "org"}, AUTH)

    r = await trust(server, "org", [PUB.upper(), OTHER_PUB, PUB])
    assert r.status == 200
    assert r.json() == {"publisher": "org", "keys": sorted([PUB, OTHER_PUB])}
    r = await server.get("/api/publishers/org")
    assert r.json() == {"publisher": "org", "keys": sorted([PUB, OTHER_PUB])}
    assert (await entry(server, V2))["verified"] is True
    assert (await entry(server, theirs))["verified"] is False  # the key is trusted for org only
    assert (await entry(server, unsigned))["verified"] is False
    r = await server.get("/api/registry/search", verified="true")
    assert [e["info_hash"] for e in r.json()] == [V2] and r.headers["x-total-count"] == "1"
    r = await server.get("/api/registry/search", verified="false")
    assert {e["info_hash"] for e in r.json()} == {theirs, unsigned}

    # the entry moves to another publisher: no longer verified; and back
    assert (await post(server, publisher="someone-else")).status == 201
    assert (await entry(server))["verified"] is False
    assert (await post(server)).status == 201
    assert (await entry(server))["verified"] is True

    # trust withdrawn
    assert (await trust(server, "org", [OTHER_PUB])).status == 200
    assert (await entry(server))["verified"] is False
    assert (await server.get("/api/registry/search", verified="true")).json() == []
    assert (await trust(server, "org", [])).status == 200
    assert (await server.get("/api/publishers/org")).json() == {"publisher": "org", "keys": []}


@pytest_twisted.ensureDeferred
async def test_a_key_trusted_first_verifies_entries_signed_later(server: Server) -> None:
    await trust(server, "org", [PUB])
    assert (await post(server)).status == 201
    assert (await entry(server))["verified"] is False
    assert (await post(server, **signed(KEY, V1, V2))).status == 201
    assert (await entry(server))["verified"] is True


@pytest_twisted.ensureDeferred
async def test_publisher_names_in_paths(server: Server) -> None:
    for name in ("meta-llama", "org/with/slashes", "ünïcode org"):
        assert (await trust(server, name.replace(" ", "%20"), [PUB])).status == 200
        r = await server.get("/api/publishers/" + name.replace(" ", "%20"))
        assert r.json() == {"publisher": name, "keys": [PUB]}


@pytest_twisted.ensureDeferred
async def test_put_publisher_errors(server: Server) -> None:
    assert (await trust(server, "org", [PUB], headers={})).status == 401
    assert (await trust(server, "org", [PUB], headers={"X-Weightless-Key": "no"})).status == 401
    headers = {"Content-Type": "application/json", **AUTH}
    for body, message in (
        (b"not json", "invalid JSON"),
        (b"[]", "keys"),
        (b'{"keys": "abc"}', "keys"),
        (b'{"keys": ["abc"]}', "64 hex"),
        (json.dumps({"keys": [PUB, 5]}).encode(), "64 hex"),
        (json.dumps({"keys": ["g" * 64]}).encode(), "64 hex"),
        (json.dumps({"keys": [f"{i:064x}" for i in range(101)]}).encode(), "at most 100"),
    ):
        r = await server.request("PUT", "/api/publishers/org", body, headers)
        assert message in error(r, 400)
    assert (await server.get("/api/publishers/org")).json()["keys"] == []


@pytest_twisted.ensureDeferred
async def test_trusted_keys_are_written_only_as_json(server: Server) -> None:
    """A cross-site form cannot set a publisher's keys: PUT needs application/json (415 with
    any other type or none), as the OpenAPI document says."""
    body = json.dumps({"keys": [PUB]}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = dict(AUTH, **({"Content-Type": content_type} if content_type else {}))
        r = await server.request("PUT", "/api/publishers/org", body, headers)
        assert "Content-Type must be application/json" in error(r, 415)
    assert (await server.get("/api/publishers/org")).json()["keys"] == []
    headers = {"Content-Type": "application/json; charset=utf-8", **AUTH}
    r = await server.request("PUT", "/api/publishers/org", body, headers)
    assert r.status == 200 and r.json()["keys"] == [PUB]


@pytest_twisted.ensureDeferred
async def test_the_operators_mark(server: Server) -> None:
    assert (await post(server)).status == 201
    r = await mark(server, V1, "true")  # either hash names the entry
    assert r.status == 200 and r.json()["verified"] is True and r.json()["info_hash"] == V2
    assert (await entry(server))["verified"] is True
    assert (await post(server, description="an edit keeps the mark")).status == 201
    assert (await entry(server))["verified"] is True
    assert (await mark(server, V2, "false")).json()["verified"] is False
    assert (await entry(server))["verified"] is False
    # cleared mark, but a trusted signature: still verified; the mark is not the only reason
    await trust(server, "org", [PUB])
    await post(server, **signed(KEY, V1, V2))
    assert (await mark(server, V2, "false")).json()["verified"] is True
    await trust(server, "org", [])
    assert (await entry(server))["verified"] is False


@pytest_twisted.ensureDeferred
async def test_operator_mark_errors(server: Server) -> None:
    await post(server)
    assert (await mark(server, V2, "true", headers={})).status == 401
    assert "verified" in error(await mark(server, V2, "yes"), 400)
    r = await server.request(
        "POST", "/api/registry/verify", headers={**AUTH, **JSON_TYPE}, info_hash=V2
    )
    assert "verified" in error(r, 400)
    assert "info_hash" in error(await mark(server, "abc", "true"), 400)
    assert error(await mark(server, hashlib.sha256(b"none").hexdigest(), "true"), 404)
    assert (await entry(server))["verified"] is False


@pytest_twisted.ensureDeferred
async def test_search_verified_parameter(server: Server) -> None:
    assert "verified" in error(await server.get("/api/registry/search", verified="maybe"), 400)
    assert (await server.get("/api/registry/search", verified="")).status == 200


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
def test_statement_hashes_of_entries(version: str) -> None:
    """An entry gives a signature exactly the hashes its torrent has."""
    e = {
        "v1": Entry(V1, "x"),
        "v2": Entry(V2, "x"),
        "hybrid": Entry(V2, "x", v1_info_hash=V1),
    }[version]
    btih, btmh = e.signed_hashes()
    assert (btih.hex() if btih else None) == (None if version == "v2" else V1)
    assert (btmh.hex() if btmh else None) == (None if version == "v1" else V2)


@pytest_twisted.ensureDeferred
async def test_small_order_keys_stored_before_they_were_refused_are_removed(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry that trusted the identity key (which "signs" every torrent) before such keys
    were refused: upgrading removes the trust and the forged signatures, and the entries it
    verified are verified again only where the operator marked them."""

    def older(dialect: str) -> list[tuple[int, str]]:
        return [(v, text) for v, text in migrations(dialect) if v < 7]

    good = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    forged = [
        (hashlib.sha256(bytes([i])).hexdigest(), IDENTITY.hex(), FORGED_SIG.hex(), marked)
        for i, marked in enumerate([False, True])
    ]
    monkeypatch.setattr(sqlite, "migrations", older)
    monkeypatch.setattr(postgres, "migrations", older)
    store = make_store(store_url)
    await store.open()
    await store.close()
    small = [IDENTITY.hex().upper(), SMALL_ORDER_KEYS["identity (order 1), sign bit flipped"]]
    for key in [good, *small]:
        raw_sql(store_url, "INSERT INTO publisher_keys VALUES (?, ?)", ("acme", key))
    for info_hash, pub, sig, marked in forged:
        raw_sql(
            store_url,
            "INSERT INTO registry (info_hash, name, publisher, publisher_key, signature, "
            "verified, operator_verified, created_at, updated_at) "
            "VALUES (?, 'forged', 'acme', ?, ?, ?, ?, 0, 0)",
            (info_hash, pub, sig, True, marked),
        )
    monkeypatch.undo()
    store = make_store(store_url)
    await store.open()
    server = await Server.start(store)
    try:
        keys = (await server.get("/api/publishers/acme")).json()["keys"]
        assert keys == [good]
        for info_hash, _pub, _sig, marked in forged:
            shown = (await server.get("/api/registry", info_hash=info_hash)).json()
            assert "publisher_key" not in shown and "signature" not in shown
            assert shown["verified"] is marked
    finally:
        await server.stop()
        await store.close()
