"""libtorrent as a real client: a seeder and a leecher on loopback swap a hybrid torrent through
the real ``twistd weightless`` process (listed mode, HTTP and UDP, with and without passkeys),
and the registry then shows what happened."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest
from helpers import make_passkey

from integration.lt_helpers import (
    Client,
    digests,
    free_udp_port,
    get_json,
    make_content,
    make_torrent,
    upload_torrent,
)
from integration.process import Tracker, query_db
from integration.waiting import eventually

pytestmark = pytest.mark.integration

TEST_TIMEOUT = 180.0  # seconds for one test, tracker start included: bounds a failure only
SECRET = "libtorrent integration secret"
KEY = "libtorrent integration registry key"
SEEDER, LEECHER = "seeder-alice", "leecher_bob"
# libtorrent keeps one UDP connection id per tracker IP for the whole process (for 60 s), and a
# new tracker process does not know the ids of the last one: each test's UDP tracker gets its
# own loopback address.
UDP_HOSTS = (f"127.0.0.{n}" for n in itertools.count(2))


class Swarm:
    """The processes and sessions of one test, stopped at teardown whatever happened:
    the clients first (they send their stopped announces), then the tracker."""

    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.trackers: list[Tracker] = []

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()

    def close(self) -> None:
        self.close_clients()
        for tracker in self.trackers:
            tracker.kill()


@pytest.fixture
def swarm() -> Iterator[Swarm]:
    s = Swarm()
    try:
        yield s
    finally:
        s.close()


def user_totals(tracker: Tracker, user_id: str) -> dict[str, Any]:
    status, body = get_json(tracker.port, f"/api/users/{user_id}", KEY)
    return body if status == 200 else {"status": status, "body": body}


@pytest.mark.parametrize(
    ("scheme", "passkeys"),
    [("http", False), ("udp", False), ("http", True), ("udp", True)],
    ids=["http", "udp", "http-passkeys", "udp-passkeys"],
)
def test_download_through_the_tracker(
    tmp_path: Path, swarm: Swarm, scheme: str, passkeys: bool
) -> None:
    deadline = time.monotonic() + TEST_TIMEOUT
    env = {"REGISTRY_KEY": KEY}
    if passkeys:
        env["TRACKER_SECRET"] = SECRET
    udp_host = next(UDP_HOSTS)
    udp_port = free_udp_port(udp_host)
    tracker = Tracker(
        tmp_path,
        "--rate-limit",
        "0",
        "--udp",
        str(udp_port),
        "--udp-interface",
        udp_host,
        env=env,
    )
    swarm.trackers.append(tracker)
    tracker.start()

    content = make_content(tmp_path / "seeder")
    size = sum(p.stat().st_size for p in content.iterdir())
    torrent = make_torrent(content)
    hashes = lt.torrent_info(torrent).info_hashes()
    v1, v2 = hashes.v1.to_bytes().hex(), hashes.v2.to_bytes().hex()

    # listed mode: register the torrent (the raw file), with the registry key
    assert upload_torrent(tracker.port, torrent, None)[0] == 401
    status, body = upload_torrent(tracker.port, torrent, KEY, category="models")
    assert (status, body) == (201, {"status": "created", "info_hash": v2, "v1_info_hash": v1})

    def announce_url(user: str) -> str:
        path = "/announce/" + make_passkey(SECRET, user) if passkeys else "/announce"
        if scheme == "http":
            return f"http://127.0.0.1:{tracker.port}{path}"
        return f"udp://{udp_host}:{udp_port}{path}"

    seeder = Client("seeder", torrent, tmp_path / "seeder", announce_url(SEEDER))
    swarm.clients.append(seeder)
    seeder.wait(lambda: seeder.status().is_seeding, "the seeder to check its files", deadline)
    seeder.wait(lambda: seeder.replies > 0, "the seeder's first announce", deadline)

    leecher = Client("leecher", torrent, tmp_path / "leecher", announce_url(LEECHER))
    swarm.clients.append(leecher)
    leecher.wait(lambda: leecher.status().is_seeding, "the download", deadline)
    assert not seeder.errors and not leecher.errors, (seeder.report(), leecher.report())

    # the leecher announced event=completed under both hashes: one completion, two seeders
    def entry(info_hash: str) -> tuple[int, Any]:
        return get_json(tracker.port, f"/api/registry?info_hash={info_hash}")

    status, found = eventually(
        lambda: entry(v2),
        lambda r: r[0] == 200 and (r[1]["completions"], r[1]["seeders"]) == (1, 2),
        deadline,
    )
    assert status == 200, found
    assert entry(v1) == (200, found)
    found = dict(found)
    assert found.pop("created_at").endswith("Z")
    magnet = found.pop("magnet")
    assert magnet.startswith(f"magnet:?xt=urn:btih:{v1}&xt=urn:btmh:1220{v2}&dn="), magnet
    assert found == {
        "info_hash": v2,
        "v1_info_hash": v1,
        "name": content.name,
        "verified": False,
        "completions": 1,
        "size": size,  # the files' bytes, without the pad files
        "category": "models",
        "seeders": 2,
        "leechers": 0,
    }

    if passkeys:
        seeder.reannounce()  # its upload total reaches the tracker with its next announce
        seeded, leeched = eventually(
            lambda: (user_totals(tracker, SEEDER), user_totals(tracker, LEECHER)),
            lambda u: u[0].get("uploaded", 0) >= size and u[1].get("downloaded", 0) >= size,
            deadline,
        )
        assert seeded["uploaded"] >= size and seeded["downloaded"] == 0, seeded
        assert leeched["downloaded"] >= size and leeched["uploaded"] == 0, leeched
    else:
        # no passkeys, no accounting
        assert get_json(tracker.port, f"/api/users/{SEEDER}", KEY)[0] == 404

    # both stop (stopped announces under both hashes, after the completed ones): the swarm
    # empties, the completion was counted once
    swarm.close_clients()
    status, found = eventually(lambda: entry(v2), lambda r: r[1]["seeders"] == 0, deadline)
    counts = (found["completions"], found["seeders"], found["leechers"])
    assert counts == (1, 0, 0), "\n".join([seeder.report(), leecher.report()])
    assert digests(tmp_path / "leecher" / content.name) == digests(content)

    # and a clean stop leaves all of it in the database
    totals = {u: user_totals(tracker, u) for u in (SEEDER, LEECHER)} if passkeys else {}
    tracker.stop()
    assert query_db(tracker.db, "SELECT completions FROM registry WHERE info_hash = ?", v2) == [
        (1,)
    ]
    rows = query_db(tracker.db, "SELECT user_id, uploaded, downloaded FROM users")
    assert sorted(rows) == sorted((u, t["uploaded"], t["downloaded"]) for u, t in totals.items())
