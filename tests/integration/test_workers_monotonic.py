"""Counts never go backwards across workers: with ``--workers 3``, a value a client has read
(completions, seeders, leechers) is never read lower a moment later unless the swarm really
shrank, in particular right after a registry upsert."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest

from integration.process import V1, V2, Tracker, seed
from integration.test_workers import cluster, get_from, http_announce
from integration.waiting import wait_for

pytestmark = pytest.mark.integration


def post(tracker: Tracker, body: dict[str, Any]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", tracker.port, timeout=10)
    try:
        conn.request(
            "POST",
            "/api/registry",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def read(tracker: Tracker, n: int) -> dict[str, Any]:
    status, body = get_from(tracker, f"/api/registry?info_hash={V2}".encode(), f"127.3.0.{n}")
    assert status == 200, body
    found: dict[str, Any] = json.loads(body)
    return found


def test_counts_never_go_back_after_an_upsert(tmp_path: Path, trackers: list[Tracker]) -> None:
    tracker = cluster(tmp_path, trackers)
    seed(tracker, [(V2, V1, "hybrid")])
    tracker.start()
    v1, v2 = bytes.fromhex(V1), bytes.fromhex(V2)[:20]
    for n in range(4):
        http_announce(tracker, v1 if n % 2 else v2, n)
    for n in range(2):  # two peers complete (flushed to the database only seconds later)
        http_announce(tracker, v1 if n % 2 else v2, n, event="completed", left=0)
    wait_for(
        lambda: all(read(tracker, n)["completions"] == 2 for n in range(2, 40)),
        "every worker to read 2 completions",
    )
    for round_ in range(5):
        status = post(tracker, {"info_hash": V2, "v1_info_hash": V1, "name": f"n{round_}"})
        assert status == 201
        if round_ % 2:  # an upsert without the v1 hash keeps it
            assert post(tracker, {"info_hash": V2, "name": f"m{round_}"}) == 201
        for n in range(2, 60):
            entry = read(tracker, n)
            assert entry["completions"] >= 2, (round_, n, entry)
            assert (entry["seeders"], entry["leechers"]) == (2, 2), (round_, n, entry)
        for n in range(6):  # and the hybrid's v1 hash is still its swarm everywhere
            reply = http_announce(tracker, v1, 100 + n)
            assert b"failure reason" not in reply, reply
            assert reply[b"downloaded"] >= 2, reply
            http_announce(tracker, v1, 100 + n, event="stopped")


@pytest.mark.parametrize("workers", [2, 3])
def test_a_count_read_from_one_worker_is_never_read_lower_from_another(
    tmp_path: Path, trackers: list[Tracker], workers: int
) -> None:
    """Peers join and complete one by one; after each, a client polls GET /api/registry from
    addresses the kernel spreads over every worker, as real clients' downloads were polled.
    The swarm only grows here, so no count read may be lower than one read before it."""
    tracker = cluster(tmp_path, trackers, workers=workers)
    seed(tracker, [(V2, V1, "hybrid")])
    tracker.start()
    v1, v2 = bytes.fromhex(V1), bytes.fromhex(V2)[:20]
    highest = {"completions": 0, "seeders": 0, "leechers": 0}
    reads = 0
    for n in range(8):
        swarm = v1 if n % 2 else v2  # a hybrid's peers announce either hash
        http_announce(tracker, swarm, n)  # a new leecher
        http_announce(tracker, swarm, n, event="completed", left=0)  # now a seeder
        for source in range(24):
            entry = read(tracker, 2 + (n * 24 + source) % 200)
            reads += 1
            for field, high in highest.items():
                assert entry[field] >= high, (n, source, field, entry, highest)
                highest[field] = max(high, entry[field])
        assert highest["completions"] == n + 1 and highest["seeders"] == n + 1, highest
    assert reads == 8 * 24
