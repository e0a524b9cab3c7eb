"""A registry played in memory for the client's unit tests: `Served` answers the registry API
through httpx.MockTransport (no socket), and `serve` makes every `Registry` the client opens
talk to it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from weightless.client import http as http_module
from weightless.client import registry as registry_module
from weightless.torrent.metainfo import parse_torrent

Entry = dict[str, Any]
Override = Callable[[httpx.Request], "httpx.Response | None"]

H64 = "ab" * 32
H40 = "cd" * 20


def entry(info_hash: str = H64, v1: str | None = H40, **fields: Any) -> Entry:
    """A RegistryEntry as the API returns it."""
    out: Entry = {
        "info_hash": info_hash,
        "v1_info_hash": v1,
        "name": "model",
        "publisher": None,
        "seeders": 0,
        "leechers": 0,
        "completions": 0,
        "verified": False,
    }
    out.update(fields)
    return out


def entry_of(torrent: bytes, **fields: Any) -> Entry:
    """The entry the registry makes of a .torrent's bytes."""
    info = parse_torrent(torrent)
    v1 = info.v1_info_hash_hex if info.v2_info_hash else None
    return entry(info.info_hash_hex, v1, **{"name": info.name, **fields})


class Served:
    """Entries (by registry hash), stored .torrent files, model cards, trusted keys per
    publisher, and the requests seen. A search matches ``q`` as a substring and ``name``,
    ``publisher``, ``version`` exactly, newest ``created_at`` first; an upload replaces the
    entry's fields with those it gives, as the registry does. ``api_key`` set: uploads need it.
    ``override`` may answer any request first (return None to fall through to the registry)."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.torrents: dict[str, bytes] = {}
        self.keys: dict[str, list[str]] = {}
        self.cards: dict[str, str] = {}  # registry hash: Markdown
        self.requests: list[httpx.Request] = []
        self.api_key: str | None = None
        self.override: Override | None = None
        self.slept: list[float] = []

    def add(self, found: Entry, torrent: bytes | None = None) -> Entry:
        self.entries[found["info_hash"]] = found
        if torrent is not None:
            self.torrents[found["info_hash"]] = torrent
        return found

    def find(self, info_hash: str) -> Entry | None:
        for e in self.entries.values():
            if info_hash in (e["info_hash"], e.get("v1_info_hash")):
                return e
        return None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.override is not None:
            answer = self.override(request)
            if answer is not None:
                return answer
        path, params = request.url.path, request.url.params
        if request.method == "GET" and path == "/api/registry":
            found = self.find(params.get("info_hash", ""))
            return _json(200, found) if found else _json(404, {"error": "not found"})
        if request.method == "GET" and path == "/api/registry/search":
            q = (params.get("q") or "").lower()
            hits = [
                e
                for e in self.entries.values()
                if q in str(e.get("name", "")).lower()
                and all(
                    e.get(k) == params[k] for k in ("name", "publisher", "version") if k in params
                )
            ]
            hits.sort(key=lambda e: str(e.get("created_at") or ""), reverse=True)
            offset, limit = int(params.get("offset", 0)), int(params.get("limit", 50))
            page = hits[offset : offset + limit]
            return _json(200, page, {"X-Total-Count": str(len(hits))})
        if request.method == "GET" and path == "/api/registry/torrent":
            found = self.find(params.get("info_hash", ""))
            data = self.torrents.get(found["info_hash"]) if found else None
            if data is None:
                return _json(404, {"error": "no torrent file stored"})
            return httpx.Response(200, content=data)
        if request.method == "POST" and path == "/api/registry/torrent":
            if self.api_key and request.headers.get("X-Weightless-Key") != self.api_key:
                return _json(401, {"error": "missing or wrong registry key"})
            data = request.content
            made = self.add(entry_of(data, **dict(params)), data)
            return _json(
                201,
                {
                    "status": "created",
                    "info_hash": made["info_hash"],
                    "v1_info_hash": made["v1_info_hash"],
                },
            )
        if request.method == "PUT" and path == "/api/registry/card":
            if self.api_key and request.headers.get("X-Weightless-Key") != self.api_key:
                return _json(401, {"error": "missing or wrong registry key"})
            found = self.find(params.get("info_hash", ""))
            if found is None:
                return _json(404, {"error": "info_hash not found"})
            self.cards[found["info_hash"]] = request.content.decode("utf-8")
            return _json(200, {"status": "stored"})
        if request.method == "GET" and path.startswith("/api/publishers/"):
            name = unquote(request.url.raw_path.decode().split("/")[-1])
            return _json(200, {"publisher": name, "keys": self.keys.get(name, [])})
        return _json(404, {"error": "no such route"})


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def serve(monkeypatch: pytest.MonkeyPatch, served: Served | None = None) -> Served:
    """Every `Registry` made from now on (in this test) talks to ``served``; its waits on 429
    are recorded in ``served.slept`` instead of slept."""
    served = served or Served()
    real = httpx.Client

    def client(**options: Any) -> httpx.Client:
        options["transport"] = httpx.MockTransport(served)
        return real(**options)

    monkeypatch.setattr(http_module.httpx, "Client", client)
    monkeypatch.setattr(registry_module.time, "sleep", served.slept.append)
    return served
