"""Owners of registry names, over real HTTP, once per backend (SQLite and PostgreSQL): publisher
tokens that write only their publisher's entries, signed namespaces (a publisher with trusted
keys signs every entry of its name), "signed" only while it is true, and model cards."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from registry_kit import Response, Server, error, make_store, make_torrent

from weightless.registry.entries import Entry
from weightless.registry.store import Blocked, NotOwner, Unsigned
from weightless.torrent import signing
from weightless.torrent.metainfo import parse_torrent, sign_torrent
from weightless.wire.passkey import publisher_token

REGISTRY_KEY = "operator-secret"
OPERATOR = {"X-Weightless-Key": REGISTRY_KEY}
META = {"X-Weightless-Key": publisher_token(REGISTRY_KEY.encode(), "meta")}
MISTRAL = {"X-Weightless-Key": publisher_token(REGISTRY_KEY.encode(), "mistralai")}
V2 = hashlib.sha256(b"owned").hexdigest()
V1 = hashlib.sha1(b"owned").hexdigest()
KEY = Ed25519PrivateKey.from_private_bytes(b"m" * 32)
STRANGER = Ed25519PrivateKey.from_private_bytes(b"s" * 32)
PUB = signing.public_bytes(KEY).hex()


def signed(key: Ed25519PrivateKey, v1: str | None = V1, v2: str | None = V2) -> dict[str, str]:
    s = signing.sign(key, bytes.fromhex(v1) if v1 else None, bytes.fromhex(v2) if v2 else None)
    return {"publisher_key": s.public_key_hex, "signature": s.signature_hex}


@pytest_twisted.async_yield_fixture
async def server(store_url: str) -> AsyncIterator[Server]:
    store = make_store(store_url)
    await store.open()
    server = await Server.start(store, registry_key=REGISTRY_KEY)
    yield server
    await server.stop()
    await store.close()


async def post(server: Server, headers: dict[str, str], **fields: Any) -> Response:
    body = {"info_hash": V2, "v1_info_hash": V1, "name": "llama", **fields}
    return await server.post_json(body, headers)


async def entry(server: Server, info_hash: str = V2) -> dict[str, Any] | None:
    r = await server.get("/api/registry", info_hash=info_hash)
    if r.status == 404:
        return None
    assert r.status == 200, r.body
    found: dict[str, Any] = r.json()
    return found


async def delete(server: Server, headers: dict[str, str], info_hash: str = V2) -> Response:
    return await server.request("DELETE", "/api/registry", headers=headers, info_hash=info_hash)


async def trust(server: Server, headers: dict[str, str], *keys: str) -> Response:
    body = json.dumps({"keys": list(keys)}).encode()
    merged = {"Content-Type": "application/json", **headers}
    return await server.request("PUT", "/api/publishers/meta", body, merged)


async def put_card(
    server: Server,
    headers: dict[str, str],
    text: bytes,
    info_hash: str = V2,
    content_type: str = "text/markdown",
) -> Response:
    merged = {"Content-Type": content_type, **headers}
    return await server.request("PUT", "/api/registry/card", text, merged, info_hash=info_hash)


# -- publisher tokens


@pytest_twisted.ensureDeferred
async def test_a_token_writes_its_publishers_entries_and_fills_in_the_publisher(
    server: Server, tmp_path: Path
) -> None:
    assert (await post(server, META)).status == 201
    found = await entry(server)
    assert found is not None and found["publisher"] == "meta"  # given by the token
    assert (await post(server, META, publisher="meta", description="updated")).status == 201
    found = await entry(server)
    assert found is not None and found["description"] == "updated"
    r = await server.upload(make_torrent(tmp_path, "w.bin"), META, version="1")
    assert r.status == 201, r.body
    uploaded = await entry(server, r.json()["info_hash"])
    assert uploaded is not None and uploaded["publisher"] == "meta"
    assert (await delete(server, META, r.json()["info_hash"])).status == 200
    assert await entry(server, r.json()["info_hash"]) is None


@pytest_twisted.ensureDeferred
async def test_a_token_cannot_create_overwrite_or_delete_another_publishers_entries(
    server: Server, tmp_path: Path
) -> None:
    # create under another name: JSON and the raw upload
    r = await post(server, META, publisher="mistralai")
    assert "meta" in error(r, 403)
    data = make_torrent(tmp_path, "x.bin")
    error(await server.upload(data, META, publisher="mistralai"), 403)
    assert await entry(server) is None
    # an entry of mistralai: meta's token can neither rewrite (with or without a publisher,
    # from JSON or a file) nor take it down
    assert (await post(server, MISTRAL, description="theirs")).status == 201
    error(await post(server, META), 403)
    error(await post(server, META, publisher="meta"), 403)
    r = await server.upload(data, MISTRAL)
    assert r.status == 201
    other = r.json()["info_hash"]
    error(await server.upload(data, META), 403)
    error(await delete(server, META), 403)
    error(await delete(server, META, other), 403)
    found = await entry(server)
    assert found is not None and (found["publisher"], found["description"]) == (
        "mistralai",
        "theirs",
    )
    # a token cannot block a hash that no entry of its publisher has
    error(await delete(server, META, hashlib.sha256(b"unregistered").hexdigest()), 403)
    # an entry without a publisher is nobody's: only the operator rewrites it
    assert (await post(server, OPERATOR, info_hash=hashlib.sha256(b"n").hexdigest(),
                       v1_info_hash=None, name="anon")).status == 201  # fmt: skip
    error(await delete(server, META, hashlib.sha256(b"n").hexdigest()), 403)
    # the operator's key still does everything
    assert (await post(server, OPERATOR, publisher="meta")).status == 201
    assert (await delete(server, OPERATOR, other)).status == 200


@pytest_twisted.ensureDeferred
async def test_a_token_cannot_set_trust_the_operators_mark_or_read_users(server: Server) -> None:
    assert (await post(server, META)).status == 201
    assert "operator" in error(await trust(server, META, PUB), 403)
    r = await server.request(
        "POST",
        "/api/registry/verify",
        headers={**META, "Content-Type": "application/json"},
        info_hash=V2,
        verified="true",
    )
    error(r, 403)
    error(await server.request("GET", "/api/users/alice", headers=META), 403)
    found = await entry(server)
    assert found is not None and found["verified"] is False
    assert (await server.get("/api/publishers/meta")).json()["keys"] == []


@pytest.mark.parametrize(
    "wrong",
    [
        publisher_token(b"another-key", "meta"),
        publisher_token(REGISTRY_KEY.encode(), "meta")[:-1] + "0",
        "meta." + "0" * 64,
        "meta",
        REGISTRY_KEY + "x",
        publisher_token(REGISTRY_KEY.encode(), "meta").upper(),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_wrong_token_is_a_401(server: Server, wrong: str) -> None:
    headers = {"X-Weightless-Key": wrong}
    error(await post(server, headers), 401)
    error(await delete(server, headers), 401)
    error(await trust(server, headers, PUB), 401)
    error(await put_card(server, headers, b"# hi"), 401)
    assert await entry(server) is None


# -- signed namespaces


@pytest_twisted.ensureDeferred
async def test_a_publisher_with_keys_needs_a_signature_by_one_of_them(
    server: Server, tmp_path: Path
) -> None:
    assert (await trust(server, OPERATOR, PUB)).status == 200
    message = "entries of meta must be signed by one of its keys"
    # unsigned, or signed by a key meta does not trust: refused with the token too
    assert error(await post(server, META), 403) == message
    assert error(await post(server, META, **signed(STRANGER)), 403) == message
    data = make_torrent(tmp_path, "m.bin")
    assert error(await server.upload(data, META), 403) == message
    assert error(await server.upload(sign_torrent(data, STRANGER), META), 403) == message
    # a signature by a trusted key, in the body or in the file
    r = await post(server, META, **signed(KEY))
    assert r.status == 201
    found = await entry(server)
    assert found is not None and found["verified"] is True
    r = await server.upload(sign_torrent(data, KEY), META)
    assert r.status == 201, r.body
    # the operator's key is excepted
    other = hashlib.sha256(b"op").hexdigest()
    r = await post(server, OPERATOR, info_hash=other, v1_info_hash=None, publisher="meta")
    assert r.status == 201


@pytest_twisted.ensureDeferred
async def test_without_a_registry_key_nobody_claims_a_signed_namespace(store_url: str) -> None:
    """A registry with no key is open, but not to entries under a name with trusted keys."""
    store = make_store(store_url)
    await store.open()
    server = await Server.start(store)
    try:
        assert (await post(server, {}, publisher="meta")).status == 201
        assert (await trust(server, {}, PUB)).status == 200
        other = hashlib.sha256(b"impostor").hexdigest()
        r = await post(server, {}, info_hash=other, v1_info_hash=None, publisher="meta")
        assert error(r, 403) == "entries of meta must be signed by one of its keys"
        # nor can an existing entry of meta be taken over under another name
        r = await post(server, {}, publisher="evil", description="mine")
        assert error(r, 403) == "entries of meta must be signed by one of its keys"
        r = await post(server, {}, publisher="meta", **signed(KEY))
        assert r.status == 201
    finally:
        await server.stop()
        await store.close()


@pytest_twisted.ensureDeferred
async def test_an_unsigned_file_replacing_a_signed_one_clears_signed_and_verified(
    server: Server, tmp_path: Path
) -> None:
    data = make_torrent(tmp_path, "s.bin")
    info = parse_torrent(data)
    key_hash = info.info_hash_hex
    assert (await server.upload(sign_torrent(data, KEY), OPERATOR, publisher="org")).status == 201
    assert (await trust_org(server)).status == 200
    found = await entry(server, key_hash)
    assert found is not None and found["publisher_key"] == PUB and found["verified"] is True
    # a JSON update without a file keeps the stored (signed) file and its signature
    body = {"info_hash": key_hash, "name": "s.bin", "publisher": "org", "description": "d"}
    assert (await server.post_json(body, OPERATOR)).status == 201
    found = await entry(server, key_hash)
    assert found is not None and found["publisher_key"] == PUB
    # the same torrent, unsigned, replaces the file: the entry is not signed any more
    assert (await server.upload(data, OPERATOR, publisher="org")).status == 201
    found = await entry(server, key_hash)
    assert found is not None
    assert "publisher_key" not in found and "signature" not in found
    assert found["verified"] is False
    torrent = await server.get("/api/registry/torrent", info_hash=key_hash)
    assert b"signatures" not in torrent.body


async def trust_org(server: Server) -> Response:
    body = json.dumps({"keys": [PUB]}).encode()
    headers = {"Content-Type": "application/json", **OPERATOR}
    return await server.request("PUT", "/api/publishers/org", body, headers)


# -- model cards


CARD = "---\nlicense: mit\ntags: [llm]\n---\n# Llama\n\nWeights, **fp16**. Zürich ✓\n".encode()


@pytest_twisted.ensureDeferred
async def test_a_card_round_trip_by_either_hash(server: Server) -> None:
    assert (await post(server, META)).status == 201
    error(await server.get("/api/registry/card", info_hash=V2), 404)
    r = await put_card(server, META, CARD, content_type="text/markdown; charset=utf-8")
    assert (r.status, r.json()) == (200, {"status": "stored"})
    for h in (V2, V1, V1.upper()):
        r = await server.get("/api/registry/card", info_hash=h)
        assert r.status == 200
        assert r.headers["content-type"] == "text/markdown; charset=utf-8"
        assert r.body == CARD
    # replaced by another PUT; kept by an upsert of the entry
    assert (await put_card(server, OPERATOR, b"# v2\n")).status == 200
    assert (await post(server, META, description="new")).status == 201
    assert (await server.get("/api/registry/card", info_hash=V2)).body == b"# v2\n"
    # deleted with the entry: the card does not come back when the hash is registered again
    assert (await delete(server, OPERATOR)).status == 200
    error(await server.get("/api/registry/card", info_hash=V2), 404)


@pytest_twisted.ensureDeferred
async def test_card_limits_types_and_keys(server: Server) -> None:
    assert (await post(server, MISTRAL)).status == 201
    limit = 256 * 1024
    assert (await put_card(server, MISTRAL, b"a" * limit)).status == 200
    error(await put_card(server, MISTRAL, b"b" * (limit + 1)), 413)
    assert (await server.get("/api/registry/card", info_hash=V2)).body == b"a" * limit
    for wrong in ("application/json", "text/plain", "text/html", ""):
        error(await put_card(server, MISTRAL, b"# x", content_type=wrong), 415)
    error(await put_card(server, MISTRAL, b"\xff\xfe not utf-8"), 400)
    error(await put_card(server, MISTRAL, b"nul \x00"), 400)
    error(await put_card(server, META, b"# not theirs"), 403)
    error(await put_card(server, {}, b"# no key"), 401)
    error(await put_card(server, OPERATOR, b"# x", hashlib.sha256(b"none").hexdigest()), 404)
    error(await put_card(server, OPERATOR, b"# x", "xyz"), 400)
    error(await server.get("/api/registry/card", info_hash="xyz"), 400)
    assert (await server.get("/api/registry/card", info_hash=V2)).body == b"a" * limit


@pytest_twisted.ensureDeferred
async def test_the_store_checks_the_owner_in_the_write_itself(store_url: str) -> None:
    """The service's check of the stored publisher and the write are apart in time: the write
    itself refuses a row that became another publisher's meanwhile."""
    store = make_store(store_url)
    await store.open()
    try:
        await store.upsert(Entry(V2, "theirs", V1, publisher="mistralai"))
        with pytest.raises(NotOwner):
            await store.upsert(Entry(V2, "mine", V1, publisher="meta"), owner="meta")
        kept = await store.entry(V2)
        assert kept is not None and (kept.name, kept.publisher) == ("theirs", "mistralai")
        # a new entry, and an entry of the owner, are written
        other = hashlib.sha256(b"new").hexdigest()
        await store.upsert(Entry(other, "new", publisher="meta"), owner="meta")
        await store.upsert(Entry(other, "renamed", publisher="meta"), owner="meta")
        found = await store.entry(other)
        assert found is not None and found.name == "renamed"
        # a takedown with an owner takes down only that owner's entry, and blocks nothing else
        with pytest.raises(NotOwner):
            await store.takedown(V2, "not theirs", owner="meta")
        unregistered = hashlib.sha256(b"unregistered").hexdigest()
        with pytest.raises(NotOwner):
            await store.takedown(unregistered, "nothing", owner="meta")
        assert (await store.snapshot()).blocked == []
        assert await store.entry(V2) is not None
        assert await store.takedown(other, "mine", owner="meta") == [other]
        # a blocked hash is still Blocked, not NotOwner
        await store.takedown(V2, "test")
        with pytest.raises(Blocked):
            await store.upsert(Entry(V2, "again", V1, publisher="meta"), owner="meta")
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_the_store_checks_signed_namespaces_in_the_write_itself(store_url: str) -> None:
    """Trust set between the service's checks and the write still refuses an unsigned entry."""
    store = make_store(store_url)
    await store.open()
    try:
        await store.upsert(Entry(V2, "theirs", V1, publisher="meta"))
        await store.set_trusted_keys("meta", [PUB])
        other = hashlib.sha256(b"claim").hexdigest()
        with pytest.raises(Unsigned, match=r"^meta$"):
            await store.upsert(Entry(other, "claim", publisher="meta"), signed_namespaces=True)
        stranger = signed(STRANGER, None, other)
        with pytest.raises(Unsigned):
            entry = Entry(other, "claim", publisher="meta", **stranger)
            await store.upsert(entry, signed_namespaces=True)
        # taking meta's entry to another name needs meta's key too
        with pytest.raises(Unsigned, match=r"^meta$"):
            await store.upsert(Entry(V2, "mine", V1, publisher="evil"), signed_namespaces=True)
        assert await store.entry(other) is None
        kept = await store.entry(V2)
        assert kept is not None and kept.publisher == "meta"
        # signed by a trusted key, or without the rule (the operator): written
        await store.upsert(Entry(other, "claim", publisher="meta", **signed(KEY, None, other)),
                           signed_namespaces=True)  # fmt: skip
        await store.upsert(Entry(V2, "operator's", V1, publisher="evil"))
        found = await store.entry(other)
        assert found is not None and found.verified is True
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_the_store_checks_who_may_write_a_card_in_the_write_itself(store_url: str) -> None:
    """A card write, like an entry's, checks the owner and the publisher's keys in the write:
    an entry that changed hands, or a publisher trusted, between the service's call and the
    write keeps its card."""
    store = make_store(store_url)
    await store.open()
    try:
        await store.upsert(Entry(V2, "theirs", V1, publisher="mistralai"))
        assert await store.set_card(V1, "# theirs", owner="mistralai") is True  # either hash
        for h in (V2, V1):
            with pytest.raises(NotOwner):
                await store.set_card(h, "# mine", owner="meta")
        assert await store.card(V2) == "# theirs"
        await store.set_trusted_keys("mistralai", [PUB])
        with pytest.raises(Unsigned, match=r"^mistralai$"):
            await store.set_card(V2, "# anyone's", signed_namespaces=True)
        assert await store.card(V2) == "# theirs"
        # its own token, and the operator, may
        assert await store.set_card(V2, "# own", owner="mistralai") is True
        assert await store.set_card(V1, "# operator's") is True
        assert await store.card(V1) == "# operator's"
        missing = hashlib.sha256(b"missing").hexdigest()
        assert await store.set_card(missing, "# x", owner="meta") is False
        assert await store.set_card(missing, "# x", signed_namespaces=True) is False
        # an entry without a publisher: no token owns it, anyone else may
        bare = hashlib.sha256(b"bare").hexdigest()
        await store.upsert(Entry(bare, "bare"))
        with pytest.raises(NotOwner):
            await store.set_card(bare, "# x", owner="meta")
        assert await store.set_card(bare, "# x", signed_namespaces=True) is True
    finally:
        await store.close()
