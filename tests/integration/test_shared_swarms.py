"""Two trackers behind one name: each in its own directory on its own ports, one registry
database (PostgreSQL) and one Redis for the swarms. A peer that announced to one is a peer of
the other, over HTTP and UDP, for real libtorrent clients too; both answer the same counts; and
Redis going away and coming back costs announces for a moment and nothing else."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redisserver import RedisServer

from integration.lt_helpers import (
    Client,
    digests,
    get_json,
    make_content,
    make_torrent,
    upload_torrent,
)
from integration.process import Tracker
from integration.test_signed_workers import as_url, send
from integration.test_workers import cluster, get_from, http_announce, udp_announce, workers_of
from integration.waiting import eventually, wait_for

pytestmark = pytest.mark.integration

V2 = hashlib.sha256(b"one swarm, two trackers").hexdigest()
V1 = hashlib.sha1(b"one swarm, two trackers").hexdigest()
TEST_TIMEOUT = 180.0


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pair(
    tmp_path: Path, trackers: list[Tracker], private_redis: RedisServer, postgres_dsn: str
) -> tuple[Tracker, Tracker]:
    """Trackers A and B: own directories and ports, one PostgreSQL, one Redis."""
    made = []
    for name in ("a", "b"):
        workdir = tmp_path / name
        workdir.mkdir()
        tracker = Tracker(workdir, "--rate-limit", "0", "--database", as_url(postgres_dsn))
        # UDP on the HTTP port number, and Redis for the swarms
        tracker.args += ["--udp", str(tracker.port), "--swarm-store", private_redis.url]
        trackers.append(tracker)
        made.append(tracker.start())
    return made[0], made[1]


def registered(tracker: Tracker, other: Tracker) -> None:
    entry = {"info_hash": V2, "v1_info_hash": V1, "name": "shared model"}
    assert send(tracker, "POST", "/api/registry", entry) == 201
    # the other tracker hears of it through PostgreSQL's change feed
    wait_for(lambda: entry_of(other)[0] == 200, "the entry on the other tracker")


def entry_of(tracker: Tracker) -> tuple[int, Any]:
    status, body = get_from(tracker, f"/api/registry?info_hash={V2}".encode())
    return status, json.loads(body)


def peers_of(reply: dict[bytes, Any]) -> set[int]:
    peers = reply[b"peers"]
    return {int.from_bytes(peers[i + 4 : i + 6], "big") for i in range(0, len(peers), 6)}


def test_either_tracker_sees_the_peers_of_both_and_answers_the_same_counts(
    pair: tuple[Tracker, Tracker],
) -> None:
    a, b = pair
    registered(a, b)
    v2 = bytes.fromhex(V2)[:20]
    v1 = bytes.fromhex(V1)
    assert peers_of(http_announce(a, v2, 1)) == set()
    assert peers_of(http_announce(b, v2, 2, left=0)) == {10001}
    assert peers_of(http_announce(a, v2, 1)) == {10002}
    # UDP to either sees both HTTP peers
    reply = udp_announce(b, v2, 3)
    assert (reply.seeders, reply.leechers) == (1, 2)
    assert {p for _, p in _udp_peers(reply.peers)} == {10001, 10002}
    reply = udp_announce(a, v2, 4, left=0)
    assert {p for _, p in _udp_peers(reply.peers)} == {10001, 10002, 20003}
    # a v1-only client on B sees only v1 announcers (peer lists follow the hash), counted once
    assert peers_of(http_announce(b, v1, 5)) == set()
    reply = http_announce(a, v1, 2, left=0)
    assert peers_of(reply) == {10005}
    assert (reply[b"complete"], reply[b"incomplete"]) == (2, 3)
    # scrape and the registry agree on both
    expected = {b"complete": 2, b"downloaded": 0, b"incomplete": 3}
    assert a.scrape(v2, v1) == b.scrape(v2, v1) == {v2: expected, v1: expected}

    def counts(tracker: Tracker) -> tuple[int, int]:
        found = entry_of(tracker)[1]
        return found["seeders"], found["leechers"]

    deadline = time.monotonic() + 30
    eventually(lambda: (counts(a), counts(b)), lambda c: c == ((2, 3), (2, 3)), deadline)
    assert counts(a) == counts(b) == (2, 3)
    # a completion counted on B is the registry's on A too
    http_announce(b, v2, 1, left=0, event="completed")
    eventually(lambda: entry_of(a)[1]["completions"], lambda n: n == 1, deadline)
    assert a.scrape(v2)[v2][b"downloaded"] == b.scrape(v2)[v2][b"downloaded"] == 1
    a.stop()
    b.stop()


def _udp_peers(peers: bytes) -> list[tuple[bytes, int]]:
    return [
        (peers[i : i + 4], int.from_bytes(peers[i + 4 : i + 6], "big"))
        for i in range(0, len(peers), 6)
    ]


def test_a_libtorrent_seeder_on_a_serves_a_leecher_on_b(
    tmp_path: Path, pair: tuple[Tracker, Tracker]
) -> None:
    a, b = pair
    deadline = time.monotonic() + TEST_TIMEOUT
    content = make_content(tmp_path / "seeder")
    torrent = make_torrent(content)
    status, body = upload_torrent(a.port, torrent, None)
    assert status == 201, body
    v2 = body["info_hash"]
    wait_for(lambda: get_json(b.port, f"/api/registry?info_hash={v2}")[0] == 200, "B's entry")
    clients = []
    try:
        seeder = Client(
            "seeder", torrent, tmp_path / "seeder", f"http://127.0.0.1:{a.port}/announce"
        )
        clients.append(seeder)
        seeder.wait(lambda: seeder.status().is_seeding, "the seeder to check its files", deadline)
        seeder.wait(lambda: seeder.replies > 0, "the seeder's first announce", deadline)
        leecher = Client(
            "leecher", torrent, tmp_path / "leecher", f"udp://127.0.0.1:{b.port}/announce"
        )
        clients.append(leecher)
        leecher.wait(lambda: leecher.status().is_seeding, "the download through B", deadline)
        assert not seeder.errors and not leecher.errors, (seeder.report(), leecher.report())
        assert digests(tmp_path / "leecher" / content.name) == digests(content)

        def counts(port: int) -> tuple[Any, ...]:
            found = get_json(port, f"/api/registry?info_hash={v2}")[1]
            return found["completions"], found["seeders"], found["leechers"]

        eventually(
            lambda: (counts(a.port), counts(b.port)), lambda c: c[0] == c[1] == (1, 2, 0), deadline
        )
        assert counts(a.port) == counts(b.port) == (1, 2, 0)
    finally:
        for client in clients:
            client.close()
    a.stop()
    b.stop()


def test_redis_stopped_and_started_under_announces(
    pair: tuple[Tracker, Tracker], private_redis: RedisServer
) -> None:
    a, b = pair
    registered(a, b)
    v2 = bytes.fromhex(V2)[:20]
    http_announce(a, v2, 1, left=0)
    assert peers_of(http_announce(b, v2, 2)) == {10001}
    private_redis.stop()
    for tracker in (a, b):
        refused = http_announce(tracker, v2, 3)
        assert refused == {b"failure reason": b"swarm store unavailable", b"retry in": 1}
        status, _, body = tracker.get(b"/health")
        assert (status, body) == (503, b"Swarm store unreachable")
        # the registry is untouched: read and written as before
        assert entry_of(tracker)[0] == 200
    assert send(a, "POST", "/api/registry", {"info_hash": "ab" * 32, "name": "during"}) == 201
    with pytest.raises(AssertionError, match="swarm store unavailable"):
        udp_announce(b, v2, 4)
    assert a.metric("tracker_swarm_store_unavailable_total") >= 1
    for _ in range(20):  # many announces: still one log line
        http_announce(a, v2, 5)
    private_redis.start()
    back = time.monotonic()
    for tracker in (a, b):
        wait_for(
            lambda t=tracker: b"failure reason" not in http_announce(t, v2, 6), "service again"
        )
    assert time.monotonic() - back < 2.0 + 1.0  # 2 s, and the polling's own time
    assert a.get(b"/health")[0] == b.get(b"/health")[0] == 200
    assert peers_of(http_announce(b, v2, 7)) == {10006}  # a fresh Redis: who announced since
    assert entry_of(b)[0] == 200
    assert get_json(b.port, f"/api/registry?info_hash={'ab' * 32}")[0] == 200
    a.stop()
    b.stop()
    for tracker in (a, b):
        log = tracker.log()
        assert "Traceback" not in log
        assert log.count("unreachable") == 1, log


def test_workers_on_redis_answer_from_it_without_forwarding(
    tmp_path: Path, trackers: list[Tracker], private_redis: RedisServer
) -> None:
    """``--workers 2`` on Redis: each worker asks Redis itself, so whichever worker the kernel
    hands a request to, the swarm is whole, and no announce crosses the mesh."""
    tracker = cluster(
        tmp_path, trackers, "--open", "--swarm-store", private_redis.url, workers=2
    ).start()
    assert len(workers_of(tracker)) == 2
    hashes = [hashlib.sha1(b"%d" % i).digest() for i in range(4)]
    for h in hashes:
        for n in range(6):
            http_announce(tracker, h, n)
        for n in range(6, 9):
            udp_announce(tracker, h, n)
    for h in hashes:
        reply = http_announce(tracker, h, 100, left=0)
        assert len(peers_of(reply)) == 9
        assert (reply[b"complete"], reply[b"incomplete"]) == (1, 9)
        assert udp_announce(tracker, h, 101).seeders == 1
    assert {f[b"incomplete"] for f in tracker.scrape(*hashes).values()} == {10}
    assert "forwarding" not in tracker.log()
    # the registry's counts: the same from every worker
    entry = {"info_hash": V2, "v1_info_hash": V1, "name": "shared model"}
    assert send(tracker, "POST", "/api/registry", entry) == 201
    v2 = bytes.fromhex(V2)[:20]
    for n in range(3):
        http_announce(tracker, v2, n, left=0 if n == 0 else 100)

    def seen() -> set[tuple[int, int]]:
        found = set()
        for n in range(12):  # new connections from other addresses: other workers
            status, body = get_from(
                tracker, f"/api/registry?info_hash={V2}".encode(), f"127.0.6.{n}"
            )
            assert status == 200, body
            entry = json.loads(body)
            found.add((entry["seeders"], entry["leechers"]))
        return found

    eventually(seen, lambda f: f == {(1, 2)}, time.monotonic() + 30)
    assert seen() == {(1, 2)}
    tracker.stop()
