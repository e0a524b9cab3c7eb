"""Repositories in ``--workers 3``, on SQLite (one file shared by the workers) and PostgreSQL:
every worker answers the same ``version`` and ``created_at`` (also after a restart), finds by
exact name and version, holds a publisher's token to its own entries, and serves the card."""

from __future__ import annotations

import hashlib
import http.client
import json
from pathlib import Path
from typing import Any

import pytest

from integration.process import Tracker
from integration.test_signed_workers import as_url
from integration.test_workers import cluster
from weightless.wire.passkey import publisher_token

pytestmark = pytest.mark.integration

REGISTRY_KEY = "workers-operator-key"
META = publisher_token(REGISTRY_KEY.encode(), "meta")
MISTRAL = publisher_token(REGISTRY_KEY.encode(), "mistralai")
OLD = hashlib.sha256(b"repo v1 across workers").hexdigest()
NEW = hashlib.sha256(b"repo v2 across workers").hexdigest()


def send(
    tracker: Tracker,
    method: str,
    target: str,
    body: bytes | None = None,
    key: str | None = None,
    content_type: str = "application/json",
    source: str = "127.0.0.1",
) -> tuple[int, bytes]:
    """One request on a new connection from ``source``, so the kernel may hand it to any worker."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", tracker.port, timeout=10, source_address=(source, 0)
    )
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["X-Weightless-Key"] = key
    try:
        conn.request(method, target, body, headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def post(tracker: Tracker, key: str, **entry: Any) -> int:
    return send(tracker, "POST", "/api/registry", json.dumps(entry).encode(), key)[0]


def everywhere(tracker: Tracker, target: str) -> list[tuple[int, bytes]]:
    """What 18 requests answer, each from another address (spread over the workers)."""
    return [send(tracker, "GET", target, source=f"127.0.6.{n + 1}") for n in range(18)]


def one_answer(tracker: Tracker, target: str) -> Any:
    answers = {body for status, body in everywhere(tracker, target) if status == 200}
    assert len(answers) == 1, answers
    return json.loads(answers.pop())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_repositories_across_workers(
    tmp_path: Path, trackers: list[Tracker], backend: str, request: pytest.FixtureRequest
) -> None:
    extra = []
    if backend == "postgresql":
        extra = ["--database", as_url(request.getfixturevalue("postgres_dsn"))]
    tracker = cluster(tmp_path, trackers, *extra)
    tracker.env["REGISTRY_KEY"] = REGISTRY_KEY
    tracker.start()
    assert post(tracker, META, info_hash=OLD, name="llama", version="v1") == 201
    assert post(tracker, META, info_hash=NEW, name="llama", version="v2") == 201
    old = one_answer(tracker, f"/api/registry?info_hash={OLD}")
    assert (old["publisher"], old["version"]) == ("meta", "v1")
    created = old["created_at"]
    # another publisher's token is refused by every worker, and changes nothing
    for n in range(6):
        status, body = send(
            tracker,
            "POST",
            "/api/registry",
            json.dumps({"info_hash": OLD, "name": "mine", "publisher": "mistralai"}).encode(),
            MISTRAL,
            source=f"127.0.7.{n + 1}",
        )
        assert status == 403 and "error" in json.loads(body)
        status, _ = send(
            tracker,
            "DELETE",
            f"/api/registry?info_hash={OLD}",
            None,
            MISTRAL,
            source=f"127.0.8.{n + 1}",
        )
        assert status == 403
    # the owner's upsert keeps the first registration's date on every worker
    assert post(tracker, META, info_hash=OLD, name="llama", version="v1.1") == 201
    again = one_answer(tracker, f"/api/registry?info_hash={OLD}")
    assert (again["version"], again["created_at"]) == ("v1.1", created)
    found = one_answer(tracker, "/api/registry/search?name=llama&publisher=meta")
    assert {e["info_hash"] for e in found} == {OLD, NEW}
    assert [e["info_hash"] for e in one_answer(tracker, "/api/registry/search?version=v2")] == [NEW]
    # a card written through one worker is read through all
    card = b"# Llama\n\nv2 weights\n"
    status, _ = send(
        tracker, "PUT", f"/api/registry/card?info_hash={NEW}", card, META, "text/markdown"
    )
    assert status == 200
    answers = everywhere(tracker, f"/api/registry/card?info_hash={NEW}")
    assert {a for a in answers} == {(200, card)}
    # a restart of every process on the same database keeps versions and dates
    tracker.stop()
    tracker.start()
    after = one_answer(tracker, f"/api/registry?info_hash={OLD}")
    assert (after["version"], after["created_at"]) == ("v1.1", created)
    assert everywhere(tracker, f"/api/registry/card?info_hash={NEW}")[0] == (200, card)
