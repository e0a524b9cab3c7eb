"""No long work on the reactor. An uploaded .torrent is parsed in the parse process, and
/api/registry/meta is a lookup of the view computed when the file was stored (files stored
before migration 0003 get it at their first /meta, off the reactor, once). SQLite and
PostgreSQL."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from registry_kit import Server, make_torrent, raw_sql

from weightless.registry import entries
from weightless.torrent.metainfo import parse_torrent


@pytest.fixture
def parses(server: Server, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions the API sent to its parse process, in order. A .torrent parsed in the
    tracker's own process fails the test."""
    seen: list[str] = []
    run = server.stack.parse_pool.run
    assert server.api.registry.run_in_thread == run  # the wiring that ships

    def recording(fn: Any, *args: Any) -> Any:
        seen.append(fn.__name__)
        return run(fn, *args)

    def here(data: Any, **options: Any) -> Any:
        raise AssertionError("a .torrent parsed in the tracker's process")

    monkeypatch.setattr(server.api.registry, "run_in_thread", recording)
    monkeypatch.setattr(entries, "parse_torrent", here)
    return seen


def torrent(tmp_path: Path, name: str) -> bytes:
    (tmp_path / name).mkdir()
    for i in range(5):
        (tmp_path / name / f"part-{i}.bin").write_bytes(bytes([i]) * (3000 + i))
    return make_torrent(tmp_path, name)


async def meta_of(server: Server, info_hash: str) -> Any:
    r = await server.get("/api/registry/meta", info_hash=info_hash)
    assert r.status == 200, r.body
    return r.json()


@pytest_twisted.ensureDeferred
async def test_uploads_are_parsed_off_the_reactor(
    server: Server, tmp_path: Path, parses: list[str]
) -> None:
    data = torrent(tmp_path, "raw")
    assert (await server.upload(data)).status == 201
    other = torrent(tmp_path, "json")
    info = parse_torrent(other)
    body = {
        "info_hash": info.info_hash_hex,
        "name": "json",
        "torrent_data": base64.b64encode(other).decode(),
    }
    assert (await server.post_json(body)).status == 201
    assert parses == ["parse_upload", "parse_json_body"]


@pytest_twisted.ensureDeferred
async def test_meta_is_stored_with_the_file_and_read_without_parsing(
    server: Server, store_url: str, tmp_path: Path, parses: list[str]
) -> None:
    data = torrent(tmp_path, "model")
    info = parse_torrent(data)
    assert (await server.upload(data)).status == 201
    [(stored,)] = raw_sql(store_url, "SELECT meta FROM registry")
    assert json.loads(stored) == info.meta()
    parsed = len(parses)
    for _ in range(3):
        for h in (info.info_hash_hex, info.v1_info_hash_hex):
            assert await meta_of(server, h) == info.meta()
    assert len(parses) == parsed  # GET /meta parsed nothing
    # a new file replaces the view; an upsert without a file keeps it
    await server.post_json({"info_hash": info.info_hash_hex, "name": "renamed"})
    assert await meta_of(server, info.info_hash_hex) == info.meta()


@pytest_twisted.ensureDeferred
async def test_a_file_stored_before_0003_gets_its_meta_once(
    server: Server, store_url: str, tmp_path: Path, parses: list[str]
) -> None:
    data = torrent(tmp_path, "old")
    info = parse_torrent(data)
    await server.upload(data)
    raw_sql(store_url, "UPDATE registry SET meta = NULL")  # as a row from before 0003
    parses.clear()
    assert await meta_of(server, info.v1_info_hash_hex or "") == info.meta()
    assert parses == ["stored_meta"]  # computed once, in the parse process
    [(kept,)] = raw_sql(store_url, "SELECT meta FROM registry")
    assert json.loads(kept) == info.meta()
    for _ in range(3):
        assert await meta_of(server, info.info_hash_hex) == info.meta()
    assert parses == ["stored_meta"]
