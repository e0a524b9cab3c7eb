"""The /api endpoints of the spec, over real HTTP on loopback, once per backend (SQLite and
PostgreSQL): every status the API documents, and the JSON shapes."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from registry_kit import (
    Server,
    Start,
    error,
    make_torrent,
    raw_sql,
)

from weightless.torrent.metainfo import parse_torrent

V2 = hashlib.sha256(b"entry").hexdigest()
V1 = hashlib.sha1(b"entry").hexdigest()
OTHER = hashlib.sha256(b"other").hexdigest()
SPEC_KEYS = {
    "info_hash",
    "v1_info_hash",
    "name",
    "verified",
    "completions",
    "description",
    "publisher",
    "license",
    "size",
    "category",
    "tags",
    "seeders",
    "leechers",
}
FULL = {
    "info_hash": V2,
    "v1_info_hash": V1,
    "name": "Climate 2026",
    "description": "Climate dataset 2026",
    "publisher": "weightless-lab",
    "license": "CC-BY-4.0",
    "size": 236936515,
    "category": "datasets",
    "tags": "climate,2026",
}


def dated(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry without its magnet link, after checking its created_at is RFC 3339 UTC."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry.pop("created_at"))
    entry.pop("magnet", None)
    return entry


# -- GET /api/registry


@pytest_twisted.ensureDeferred
async def test_get_by_either_hash_in_any_case(server: Server) -> None:
    assert (await server.post_json(FULL)).status == 201
    for h in (V2, V2.upper(), V1, V1.upper()):
        r = await server.get("/api/registry", info_hash=h)
        assert r.status == 200
        assert dated(r.json()) == {
            **FULL,
            "verified": False,
            "completions": 0,
            "seeders": 0,
            "leechers": 0,
        }


@pytest_twisted.ensureDeferred
async def test_get_errors(server: Server) -> None:
    assert "info_hash" in error(await server.get("/api/registry"), 400)
    assert "info_hash" in error(await server.get("/api/registry", info_hash=""), 400)
    assert "64 hex" in error(await server.get("/api/registry", info_hash="abc123"), 400)
    error(await server.get("/api/registry", info_hash="zz" * 32), 400)
    error(await server.get("/api/registry", info_hash=V2), 404)
    error(await server.get("/api/registry", info_hash=V1), 404)


@pytest_twisted.ensureDeferred
async def test_entry_has_exactly_the_spec_keys_and_leaves_unset_ones_out(server: Server) -> None:
    await server.post_json({"info_hash": V2, "name": "Bare"})
    entry = (await server.get("/api/registry", info_hash=V2)).json()
    assert entry.pop("magnet") == f"magnet:?xt=urn:btmh:1220{V2}&dn=Bare&tr={server.announce_tr}"
    assert dated(entry) == {
        "info_hash": V2,
        "name": "Bare",
        "verified": False,
        "completions": 0,
        "seeders": 0,
        "leechers": 0,
    }
    await server.post_json(FULL)
    entry = (await server.get("/api/registry", info_hash=V2)).json()
    assert set(entry) == SPEC_KEYS | {"created_at", "magnet"}


# -- POST /api/registry


@pytest_twisted.ensureDeferred
async def test_post_creates_then_upserts_keeping_verified_and_completions(
    server: Server, store_url: str
) -> None:
    r = await server.post_json(FULL)
    assert (r.status, r.json()) == (201, {"status": "created"})
    raw_sql(store_url, "UPDATE registry SET operator_verified = ?, completions = 7", (True,))
    r = await server.post_json({"info_hash": V2.upper(), "name": "Renamed", "category": "models"})
    assert r.status == 201
    entry = (await server.get("/api/registry", info_hash=V2)).json()
    assert entry["verified"] is True and entry["completions"] == 7
    assert entry["name"] == "Renamed" and entry["category"] == "models"
    assert "description" not in entry  # every other field is replaced
    assert entry["v1_info_hash"] == V1  # a hash of the torrent stays once known
    assert raw_sql(store_url, "SELECT count(*) FROM registry") == [(1,)]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"\xff\xfe",
        b"[1, 2]",
        b'"text"',
        b"42",
        b"null",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
@pytest_twisted.ensureDeferred
async def test_post_refuses_what_is_not_a_json_object(server: Server, body: bytes) -> None:
    r = await server.request("POST", "/api/registry", body, {"Content-Type": "application/json"})
    error(r, 400)


@pytest.mark.parametrize(
    "change",
    [
        {"info_hash": None},
        {"info_hash": ""},
        {"name": None},
        {"name": ""},
        {"info_hash": "abc123"},
        {"info_hash": V2[:-1]},
        {"info_hash": V2 + "0"},
        {"info_hash": "g" * 64},
        {"info_hash": 12},
        {"v1_info_hash": V2},
        {"v1_info_hash": "x" * 40},
        {"name": 5},
        {"name": ["a"]},
        {"name": "nul\x00"},
        {"description": 1},
        {"publisher": {}},
        {"license": True},
        {"category": 1.5},
        {"tags": ["llm", "fp16"]},
        {"size": "1024"},
        {"size": -1},
        {"size": 1.5},
        {"size": True},
        {"size": 2**63},
        {"torrent_data": 5},
        {"torrent_data": "!!not base64!!"},
        {"torrent_data": base64.b64encode(b"not a torrent").decode()},
    ],
)
@pytest_twisted.ensureDeferred
async def test_post_refuses_bad_fields(server: Server, change: dict[str, Any]) -> None:
    body = {**FULL, **change}
    body = {k: v for k, v in body.items() if v is not None}
    error(await server.post_json(body), 400)
    error(await server.get("/api/registry", info_hash=V2), 404)


@pytest_twisted.ensureDeferred
async def test_post_v1_only_entry(server: Server) -> None:
    assert (await server.post_json({"info_hash": V1, "name": "v1 only"})).status == 201
    entry = (await server.get("/api/registry", info_hash=V1)).json()
    assert entry["info_hash"] == V1 and "v1_info_hash" not in entry


@pytest_twisted.ensureDeferred
async def test_post_with_torrent_data(server: Server, tmp_path: Path) -> None:
    data = make_torrent(tmp_path, "weights.bin")
    info = parse_torrent(data)
    body = {"info_hash": info.info_hash_hex, "name": "W", "torrent_data": base64.b64encode(data)}
    body["torrent_data"] = body["torrent_data"].decode()  # type: ignore[union-attr]
    assert (await server.post_json(body)).status == 201
    entry = (await server.get("/api/registry", info_hash=info.info_hash_hex)).json()
    assert entry["v1_info_hash"] == info.v1_info_hash_hex  # taken from the file
    r = await server.get("/api/registry/torrent", info_hash=info.info_hash_hex)
    assert r.body == data
    # a later POST without torrent_data keeps the file
    await server.post_json({"info_hash": info.info_hash_hex, "name": "W2"})
    r = await server.get("/api/registry/torrent", info_hash=info.v1_info_hash_hex)
    assert r.body == data

    wrong = {**body, "info_hash": OTHER}
    assert "does not match" in error(await server.post_json(wrong), 400)
    wrong = {**body, "v1_info_hash": V1}
    assert "does not match" in error(await server.post_json(wrong), 400)
    v1_as_key = {**body, "info_hash": info.v1_info_hash_hex}
    error(await server.post_json(v1_as_key), 400)


@pytest_twisted.ensureDeferred
async def test_post_needs_the_key_when_one_is_set(start: Start) -> None:
    server = await start(registry_key="s3cret")
    assert error(await server.post_json(FULL), 401) == "missing or wrong X-Weightless-Key"
    error(await server.post_json(FULL, {"X-Weightless-Key": "wrong"}), 401)
    error(await server.post_json(FULL, {"X-Weightless-Key": "s3cretx"}), 401)
    assert (await server.post_json(FULL, {"X-Weightless-Key": "s3cret"})).status == 201
    # reads need no key
    assert (await server.get("/api/registry", info_hash=V2)).status == 200
    assert (await server.get("/api/registry/search")).status == 200


@pytest_twisted.ensureDeferred
async def test_post_of_a_blocked_or_taken_hash_is_a_conflict(server: Server) -> None:
    await server.post_json(FULL)
    assert (await server.request("DELETE", "/api/registry", info_hash=V1)).status == 200
    assert "blocked" in error(await server.post_json(FULL), 409)
    assert "blocked" in error(await server.post_json({"info_hash": V2, "name": "x"}), 409)
    assert "blocked" in error(await server.post_json({"info_hash": V1, "name": "x"}), 409)
    # a v1 hash (or a truncated v2 one) that names another entry's swarm
    third = hashlib.sha1(b"third").hexdigest()
    await server.post_json({"info_hash": OTHER, "v1_info_hash": third, "name": "o"})
    fourth = hashlib.sha256(b"fourth").hexdigest()
    error(await server.post_json({"info_hash": fourth, "v1_info_hash": third, "name": "x"}), 409)
    error(await server.post_json({"info_hash": third, "name": "x"}), 409)
    error(await server.post_json({"info_hash": OTHER[:40], "name": "x"}), 409)


# -- POST /api/registry/torrent


@pytest.mark.parametrize("version", ["hybrid", "v1", "v2"])
@pytest_twisted.ensureDeferred
async def test_upload_raw_torrent(server: Server, tmp_path: Path, version: str) -> None:
    data = make_torrent(tmp_path, "model.safetensors", version)
    info = parse_torrent(data)
    r = await server.request(
        "POST",
        "/api/registry/torrent",
        data,
        {"Content-Type": "application/x-bittorrent"},
        category="models",
        tags="llm,fp16",
    )
    expected: dict[str, str] = {"status": "created", "info_hash": info.info_hash_hex}
    if version == "hybrid":
        expected["v1_info_hash"] = info.v1_info_hash_hex or ""
    assert (r.status, r.json()) == (201, expected)
    entry = (await server.get("/api/registry", info_hash=info.info_hash_hex)).json()
    assert entry["name"] == "model.safetensors" and entry["size"] == info.total_size
    assert entry["category"] == "models" and entry["tags"] == "llm,fp16"
    assert ("v1_info_hash" in entry) == (version == "hybrid")
    download = await server.get("/api/registry/torrent", info_hash=info.info_hash_hex)
    assert download.body == data

    r = await server.upload(data, name="Better name")
    assert r.status == 201
    entry = (await server.get("/api/registry", info_hash=info.info_hash_hex)).json()
    assert entry["name"] == "Better name"


@pytest_twisted.ensureDeferred
async def test_upload_with_a_form_content_type_is_refused(server: Server, tmp_path: Path) -> None:
    """A form content type is what a page of another site can POST without asking (and what
    ``curl --data-binary`` says unless told): 415, so no cross-site write gets through."""
    data = make_torrent(tmp_path, "form.bin")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = await server.request("POST", "/api/registry/torrent", data, form, tags="t")
    assert "Content-Type" in error(r, 415)
    r = await server.request("POST", "/api/registry/torrent", b"name=evil&tags=x", form)
    assert "Content-Type" in error(r, 415)


@pytest_twisted.ensureDeferred
async def test_upload_errors(start: Start, tmp_path: Path) -> None:
    server = await start(registry_key="k")
    key = {"X-Weightless-Key": "k"}
    data = make_torrent(tmp_path, "a.bin")
    error(await server.upload(data), 401)
    error(await server.upload(b"", key), 400)
    message = error(await server.upload(b"d4:infoi1ee", key), 400)
    assert "torrent" in message
    error(await server.upload(data[:-1], key), 400)
    error(await server.upload(data, key, size="-5"), 400)
    info = parse_torrent(data)
    await server.request("DELETE", "/api/registry", None, key, info_hash=info.v1_info_hash_hex)
    error(await server.upload(data, key), 409)


# -- DELETE /api/registry


@pytest_twisted.ensureDeferred
async def test_delete_removes_drops_peers_and_blocks_every_hash(
    server: Server, store_url: str
) -> None:
    await server.post_json(FULL)
    v2_wire, v1_wire = bytes.fromhex(V2)[:20], bytes.fromhex(V1)
    await server.announce(v2_wire, 7001, left=0)
    await server.announce(v1_wire, 7002)
    assert server.live.counts(V2) == (1, 1)
    r = await server.request("DELETE", "/api/registry", info_hash=V2, reason="dmca")
    assert (r.status, r.json()) == (200, {"status": "deleted"})
    error(await server.get("/api/registry", info_hash=V2), 404)
    assert server.stack.swarms.peer_count == 0
    for wire in (v2_wire, v1_wire):
        reply = await server.announce(wire, 7003, refused=True)
        assert b"blocked" in reply[b"failure reason"]
    rows = raw_sql(store_url, "SELECT info_hash, reason FROM blocklist ORDER BY info_hash")
    assert rows == sorted([(V2, "dmca"), (V1, "dmca")])
    # the blocklist survives a restart: a fresh catalog from the store refuses them too
    snapshot = await server.store.snapshot()
    assert sorted(snapshot.blocked) == sorted([V1, V2])


@pytest_twisted.ensureDeferred
async def test_delete_of_an_unknown_hash_still_blocks_it(server: Server) -> None:
    r = await server.request("DELETE", "/api/registry", info_hash=OTHER)
    assert (r.status, r.json()) == (200, {"status": "deleted"})
    error(await server.post_json({"info_hash": OTHER, "name": "late"}), 409)


@pytest_twisted.ensureDeferred
async def test_delete_errors(start: Start) -> None:
    server = await start(registry_key="k")
    error(await server.request("DELETE", "/api/registry", info_hash=V2), 401)
    key = {"X-Weightless-Key": "k"}
    error(await server.request("DELETE", "/api/registry", None, key), 400)
    error(await server.request("DELETE", "/api/registry", None, key, info_hash="abc123"), 400)
    assert (await server.request("DELETE", "/api/registry", None, key, info_hash=V2)).status == 200


# -- GET /api/registry/torrent and /meta


@pytest_twisted.ensureDeferred
async def test_download_headers_and_errors(server: Server, tmp_path: Path) -> None:
    data = make_torrent(tmp_path, "x.bin")
    info = parse_torrent(data)
    await server.upload(data, name='Ünïcode "set" 1/2')
    r = await server.get("/api/registry/torrent", info_hash=info.info_hash_hex)
    assert r.status == 200 and r.body == data
    assert r.headers["content-type"] == "application/x-bittorrent"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="_n_code _set_ 1_2.torrent"')
    assert "filename*=UTF-8''%C3%9Cn%C3%AFcode%20%22set%22%201%2F2.torrent" in disposition
    error(await server.get("/api/registry/torrent"), 400)
    error(await server.get("/api/registry/torrent", info_hash=OTHER), 404)
    await server.post_json({"info_hash": V2, "name": "no file"})
    error(await server.get("/api/registry/torrent", info_hash=V2), 404)


@pytest.mark.parametrize("version", ["hybrid", "v1", "v2"])
@pytest_twisted.ensureDeferred
async def test_meta(server: Server, tmp_path: Path, version: str) -> None:
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "train.bin").write_bytes(b"t" * 50000)
    (tmp_path / "set" / "test.bin").write_bytes(b"e" * 20000)
    data = make_torrent(tmp_path, "set", version)
    info = parse_torrent(data)
    await server.upload(data)
    for h in filter(None, (info.info_hash_hex, info.v1_info_hash_hex)):
        meta = (await server.get("/api/registry/meta", info_hash=h)).json()
        assert meta == {
            "name": "set",
            "piece_length": 16384,
            "piece_count": 5 if version == "v1" else 6,  # v2 pieces never span files
            "total_size": 70000,
            "files": sorted(meta["files"], key=lambda f: f["path"]),
            "signed": False,
            "public_keys": [],
        }
        assert meta["files"] == [
            {"path": "test.bin", "length": 20000},
            {"path": "train.bin", "length": 50000},
        ]


@pytest_twisted.ensureDeferred
async def test_meta_errors(server: Server) -> None:
    error(await server.get("/api/registry/meta"), 400)
    error(await server.get("/api/registry/meta", info_hash=V2), 404)
    await server.post_json({"info_hash": V2, "name": "no file"})
    error(await server.get("/api/registry/meta", info_hash=V2), 404)


# -- live counts and completions


@pytest_twisted.ensureDeferred
async def test_hybrid_peers_and_completions_count_once_across_hashes(server: Server) -> None:
    await server.post_json(FULL)
    v2_wire, v1_wire = bytes.fromhex(V2)[:20], bytes.fromhex(V1)
    await server.announce(v1_wire, 7001)  # a v1 client
    await server.announce(v2_wire, 7002)  # a v2 client
    await server.announce(v1_wire, 7003, left=0)
    reply = await server.announce(v2_wire, 7003, left=0)  # the same peer, under its v2 hash
    assert (reply[b"complete"], reply[b"incomplete"]) == (1, 2)
    await server.announce(v1_wire, 7001, left=0, event="completed")
    await server.announce(v2_wire, 7002, left=0, event="completed")
    entry = (await server.get("/api/registry", info_hash=V1)).json()
    assert (entry["seeders"], entry["leechers"], entry["completions"]) == (3, 0, 2)
    # completions reach the store with the next flush and are counted once
    await server.store.flush(server.stack.pending.take())
    stored = await server.store.entry(V2)
    assert stored is not None and stored.completions == 2
    listed = (await server.get("/api/registry/search")).json()
    assert (listed[0]["seeders"], listed[0]["completions"]) == (3, 2)


# -- search


async def _fill(server: Server) -> None:
    rows = [
        ("Llama Weights v4", "models", "meta", "llm,weights,fp16"),
        ("llama tokenizer", "models", "meta", "llm,tokenizer"),
        ("Climate 50% sample", "datasets", "noaa", "climate,2026"),
        ("Climate 500 sample", "datasets", "noaa", "climate"),
        ("snake_case names", "tools", "misc", "code"),
        ("snakeXcase names", "tools", "misc", "code"),
        ("Ünïcode Straße", "datasets", "de", "Ümlaut"),
    ]
    for i, (name, category, publisher, tags) in enumerate(rows):
        body = {
            "info_hash": hashlib.sha256(name.encode()).hexdigest(),
            "name": name,
            "category": category,
            "publisher": publisher,
            "tags": tags,
            "size": i,
        }
        assert (await server.post_json(body)).status == 201


async def _names(server: Server, **params: Any) -> tuple[list[str], int]:
    r = await server.get("/api/registry/search", **params)
    assert r.status == 200, r.body
    return [e["name"] for e in r.json()], int(r.headers["x-total-count"])


@pytest_twisted.ensureDeferred
async def test_search_filters(server: Server) -> None:
    await _fill(server)
    names, total = await _names(server)
    assert total == 7 and names[0] == "Ünïcode Straße" and names[-1] == "Llama Weights v4"
    assert (await _names(server, q="LLAMA"))[0] == ["llama tokenizer", "Llama Weights v4"]
    assert (await _names(server, q="50%"))[0] == ["Climate 50% sample"]
    assert (await _names(server, q="%"))[0] == ["Climate 50% sample"]
    assert (await _names(server, q="snake_case"))[0] == ["snake_case names"]
    assert (await _names(server, q="_"))[0] == ["snake_case names"]
    assert (await _names(server, q="\\"))[0] == []
    assert (await _names(server, q="ünï"))[0] == ["Ünïcode Straße"]
    assert (await _names(server, category="models"))[1] == 2
    assert (await _names(server, category="Models"))[1] == 0  # exact
    assert (await _names(server, publisher="noaa"))[1] == 2
    assert (await _names(server, publisher="noa"))[1] == 0
    assert (await _names(server, tags="TOKEN"))[0] == ["llama tokenizer"]
    assert (await _names(server, tags="ümlaut"))[0] == ["Ünïcode Straße"]
    names, total = await _names(server, q="llama", category="models", tags="fp16", publisher="meta")
    assert (names, total) == (["Llama Weights v4"], 1)
    r = await server.get("/api/registry/search", q="nothing like it")
    assert (r.status, r.json(), r.headers["x-total-count"]) == (200, [], "0")


@pytest_twisted.ensureDeferred
async def test_search_pages(server: Server) -> None:
    await _fill(server)
    everything, _ = await _names(server)
    assert (await _names(server, limit=2, offset=1)) == (everything[1:3], 7)
    assert (await _names(server, offset=6)) == (everything[6:], 7)
    assert (await _names(server, offset=7)) == ([], 7)
    assert (await _names(server, offset=10**18)) == ([], 7)
    assert (await _names(server, limit=1000)) == (everything, 7)


@pytest_twisted.ensureDeferred
async def test_search_limit_default_and_cap(server: Server, store_url: str) -> None:
    for i in range(120):
        h = hashlib.sha256(b"%d" % i).hexdigest()
        raw_sql(
            store_url,
            "INSERT INTO registry (info_hash, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
            (h, f"entry {i}", float(i), float(i)),
        )
    r = await server.get("/api/registry/search")
    assert len(r.json()) == 50 and r.headers["x-total-count"] == "120"
    assert r.json()[0]["name"] == "entry 119"  # newest first
    assert len((await server.get("/api/registry/search", limit=101)).json()) == 100
    assert len((await server.get("/api/registry/search", limit=100)).json()) == 100


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "name"},
        {"sort": "seeders;drop"},
        {"limit": "0"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"limit": ""},
        {"offset": "-1"},
        {"offset": "x"},
        {"q": "nul\x00"},
    ],
)
@pytest_twisted.ensureDeferred
async def test_search_refuses_bad_parameters(server: Server, params: dict[str, str]) -> None:
    error(await server.get("/api/registry/search", **params), 400)


@pytest_twisted.ensureDeferred
async def test_parameters_must_be_utf8(server: Server) -> None:
    assert "UTF-8" in error(await server.get("/api/registry/search?q=%FF"), 400)
    error(await server.get("/api/registry?info_hash=%FF"), 400)


@pytest_twisted.ensureDeferred
async def test_search_sorts(server: Server, store_url: str) -> None:
    await _fill(server)
    names = {
        n: hashlib.sha256(n.encode()).hexdigest()
        for n in ("Climate 500 sample", "llama tokenizer", "Llama Weights v4")
    }
    raw_sql(store_url, "UPDATE registry SET completions = 9 WHERE name = ?", ("llama tokenizer",))
    raw_sql(
        store_url, "UPDATE registry SET completions = 5 WHERE name = ?", ("Climate 500 sample",)
    )
    ordered, _ = await _names(server, sort="completions")
    assert ordered[:2] == ["llama tokenizer", "Climate 500 sample"]
    # seeders: live counts, copied to the store for ordering the whole result set
    for port, name in enumerate(["Llama Weights v4"] * 3 + ["Climate 500 sample"] * 2, 7000):
        await server.announce(bytes.fromhex(names[name])[:20], port, left=0)
    from weightless.registry.live import CountsPublisher

    publisher = CountsPublisher(server.live, server.store, server.stack.reactor)
    await publisher.publish()
    page1, total = await _names(server, sort="seeders", limit=1)
    page2, _ = await _names(server, sort="seeders", limit=1, offset=1)
    assert (page1, page2, total) == (["Llama Weights v4"], ["Climate 500 sample"], 7)
    listed = (await server.get("/api/registry/search", sort="seeders", limit=2)).json()
    assert [e["seeders"] for e in listed] == [3, 2]
    # a peer leaves: the next publish moves the order
    for port in (7000, 7001):
        await server.announce(bytes.fromhex(names["Llama Weights v4"])[:20], port, event="stopped")
    await publisher.publish()
    assert (await _names(server, sort="seeders", limit=2))[0] == [
        "Climate 500 sample",
        "Llama Weights v4",
    ]


# -- users


@pytest_twisted.ensureDeferred
async def test_user_traffic(start: Start) -> None:
    from helpers import make_passkey

    server = await start(secret=b"tracker-secret", registry_key="k")
    key = {"X-Weightless-Key": "k"}
    await server.post_json(FULL, key)
    passkey = make_passkey("tracker-secret", "alice")
    wire = bytes.fromhex(V1)
    await server.announce(wire, 7001, passkey=passkey, event="started", uploaded=100, downloaded=5)
    await server.announce(wire, 7001, passkey=passkey, uploaded=300, downloaded=50)
    error(await server.get("/api/users/alice"), 401)
    r = await server.request("GET", "/api/users/alice", headers=key)
    assert r.json() == {"user_id": "alice", "uploaded": 300, "downloaded": 50}
    await server.store.flush(server.stack.pending.take())
    await server.announce(wire, 7001, passkey=passkey, uploaded=301, downloaded=50)
    r = await server.request("GET", "/api/users/alice", headers=key)
    assert r.json() == {"user_id": "alice", "uploaded": 301, "downloaded": 50}
    error(await server.request("GET", "/api/users/bob", headers=key), 404)
    error(await server.request("GET", "/api/users/b%20ob", headers=key), 404)


@pytest_twisted.ensureDeferred
async def test_user_without_registry_key(server: Server) -> None:
    error(await server.get("/api/users/nobody"), 404)


# -- cross-cutting: JSON errors, body limit, rate limit, CORS, database outage


@pytest_twisted.ensureDeferred
async def test_unknown_paths_and_methods_answer_json(server: Server) -> None:
    error(await server.get("/api/nothing"), 404)
    error(await server.get("/api/registry/search/more"), 404)
    r = await server.request("PUT", "/api/registry", b"{}")
    error(r, 405)
    assert "POST" in r.headers["allow"]
    error(await server.request("DELETE", "/api/registry/search"), 405)
    # paths that no route's pattern can match (control characters) are still JSON
    for path in ("/api/users/a%0Ab%0Dc%C2%85d%0Be", "/api/x%0A"):
        error(await server.get(path), 404)


@pytest_twisted.ensureDeferred
async def test_a_database_gone_is_a_503_in_the_api_and_the_pages(server: Server) -> None:
    from helpers import FakeStore

    server.api.registry.store = FakeStore(lambda: None)  # every query: StoreUnavailable
    for path in ("/api/registry", "/api/registry/meta", "/api/registry/torrent"):
        r = await server.get(path, info_hash=V2)
        assert error(r, 503) == "database unavailable, try again later", path
    assert error(await server.get("/api/publishers/org"), 503)
    page = await server.get("/torrents/" + V2)
    assert page.status == 503
    assert b"The registry&#39;s database is unavailable; try again later." in page.body


@pytest_twisted.ensureDeferred
async def test_options_allow_lists_what_the_path_answers(server: Server) -> None:
    expected = {
        "/api/registry": "DELETE, GET, HEAD, OPTIONS, POST",
        "/api/registry/search": "GET, HEAD, OPTIONS",
        "/api/registry/torrent": "GET, HEAD, OPTIONS, POST",
        "/api/users/alice": "GET, HEAD, OPTIONS",
        "/api/openapi.json": "GET, HEAD, OPTIONS",
    }
    for path, allow in expected.items():
        r = await server.request("OPTIONS", path)
        assert (r.status, r.headers["allow"]) == (204, allow), path
    error(await server.request("OPTIONS", "/api/nothing"), 404)


@pytest_twisted.ensureDeferred
async def test_json_body_limit(server: Server) -> None:
    pad = 1024 * 1024 - len(json.dumps({**FULL, "description": ""})) - 8
    fits = {**FULL, "description": "d" * pad}
    assert len(json.dumps(fits)) <= 1024 * 1024
    assert (await server.post_json(fits)).status == 201
    too_big = {**FULL, "description": "d" * (1024 * 1024)}
    assert "too large" in error(await server.post_json(too_big), 413)


@pytest_twisted.ensureDeferred
async def test_rate_limit(start: Start) -> None:
    server = await start(rate_limit=5.0)
    statuses = [(await server.get("/api/registry/search")).status for _ in range(10)]
    assert statuses == [200] * 10
    r = await server.get("/api/registry/search")
    error(r, 429)
    assert int(r.headers["retry-after"]) >= 1


@pytest_twisted.ensureDeferred
async def test_cors(start: Start) -> None:
    server = await start(cors_origins=("https://app.example",))
    allowed = {"Origin": "https://app.example"}
    r = await server.request("GET", "/api/registry/search", headers=allowed)
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert "X-Total-Count" in r.headers["access-control-expose-headers"]
    preflight = {
        **allowed,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-weightless-key",
    }
    r = await server.request("OPTIONS", "/api/registry", headers=preflight)
    assert r.status == 204
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "X-Weightless-Key" in r.headers["access-control-allow-headers"]
    r = await server.request("GET", "/api/registry/search", headers={"Origin": "https://evil"})
    assert r.status == 200 and "access-control-allow-origin" not in r.headers
    r = await server.request("OPTIONS", "/api/registry", headers={"Origin": "https://evil"})
    assert "access-control-allow-origin" not in r.headers
