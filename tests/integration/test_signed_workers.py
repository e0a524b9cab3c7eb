"""Trust changes in ``--workers 3``: every worker answers with the new ``verified`` at once,
on SQLite (one file shared by the workers) and on PostgreSQL."""

from __future__ import annotations

import hashlib
import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg2.extensions import parse_dsn

from integration.process import Tracker
from integration.test_workers import cluster, get_from
from weightless.torrent import signing

pytestmark = pytest.mark.integration

V2 = hashlib.sha256(b"signed across workers").hexdigest()
KEY = Ed25519PrivateKey.from_private_bytes(b"w" * 32)


def send(tracker: Tracker, method: str, target: str, body: Any = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", tracker.port, timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, target, data, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def as_url(dsn: str) -> str:
    """The fixture's key=value DSN as the postgresql:// URL that --database takes."""
    parts = parse_dsn(dsn)
    options = quote(parts.get("options", ""), safe="")
    return (
        f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"
        f"?options={options}"
    )


def verified_everywhere(tracker: Tracker) -> set[bool]:
    """``verified`` as 24 requests see it, each on a new connection from another address, so
    the kernel spreads them over the workers."""
    seen = set()
    for n in range(24):
        status, body = get_from(tracker, f"/api/registry?info_hash={V2}".encode(), f"127.0.5.{n}")
        assert status == 200, body
        seen.add(json.loads(body)["verified"])
    return seen


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_worker_sees_trust_changes(
    tmp_path: Path, trackers: list[Tracker], backend: str, request: pytest.FixtureRequest
) -> None:
    extra = []
    if backend == "postgresql":
        extra = ["--database", as_url(request.getfixturevalue("postgres_dsn"))]
    tracker = cluster(tmp_path, trackers, *extra).start()
    sig = signing.sign(KEY, None, bytes.fromhex(V2))
    entry = {
        "info_hash": V2,
        "name": "model",
        "publisher": "org",
        "publisher_key": sig.public_key_hex,
        "signature": sig.signature_hex,
    }
    assert send(tracker, "POST", "/api/registry", entry) == 201
    assert verified_everywhere(tracker) == {False}
    assert send(tracker, "PUT", "/api/publishers/org", {"keys": [sig.public_key_hex]}) == 200
    assert verified_everywhere(tracker) == {True}
    assert send(tracker, "PUT", "/api/publishers/org", {"keys": []}) == 200
    assert verified_everywhere(tracker) == {False}
    assert send(tracker, "POST", f"/api/registry/verify?info_hash={V2}&verified=true") == 200
    assert verified_everywhere(tracker) == {True}
