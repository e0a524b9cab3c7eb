"""Clients that are not libtorrent, through the real ``twistd weightless`` (listed mode): aria2
downloads a v1 torrent from a libtorrent seeder, and rtorrent (v1-only) seeding a hybrid
torrent serves a libtorrent leecher through the registered entry, whose counts merge both
hashes while each hash gets its own peers. The registry then shows the completions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest
from helpers import make_passkey

from integration import other_clients
from integration.lt_helpers import (
    PIECE,
    Client,
    digests,
    get_json,
    make_content,
    upload_torrent,
)
from integration.other_clients import (
    Process,
    aria2c,
    make_torrent,
    need,
    rtorrent,
    write_pad_files,
)
from integration.ports import free_port
from integration.process import Tracker, query_db
from integration.waiting import eventually

pytestmark = pytest.mark.integration

TEST_TIMEOUT = 240.0  # seconds for one test, tracker start included: bounds a failure only
KEY = "other clients registry key"
SECRET = "other clients tracker secret"
SEEDER, LEECHER = "libtorrent-seeder", "aria2-leecher"


class Run:
    """What one test started, stopped at teardown whatever happened."""

    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.processes: list[Process] = []
        self.trackers: list[Tracker] = []

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for process in self.processes:
            process.kill()
        for tracker in self.trackers:
            tracker.kill()


@pytest.fixture
def run() -> Iterator[Run]:
    r = Run()
    try:
        yield r
    finally:
        r.close()


def start_tracker(tmp_path: Path, run: Run, secret: str | None = None) -> Tracker:
    env = {"REGISTRY_KEY": KEY}
    if secret is not None:
        env["TRACKER_SECRET"] = secret
    tracker = Tracker(tmp_path, "--rate-limit", "0", env=env)
    run.trackers.append(tracker)
    return tracker.start()


def without_trackers(torrent: bytes) -> bytes:
    """The same torrent (same info hash) with no announce URL in it."""
    decoded = lt.bdecode(torrent)
    decoded.pop(b"announce", None)
    decoded.pop(b"announce-list", None)
    return bytes(lt.bencode(decoded))


def entry(tracker: Tracker, info_hash: str) -> tuple[int, Any]:
    return get_json(tracker.port, f"/api/registry?info_hash={info_hash}")


@pytest.mark.parametrize("passkeys", [False, True], ids=["open-urls", "passkey-first-urls"])
def test_aria2_downloads_a_v1_torrent_and_its_completion_counts(
    tmp_path: Path, run: Run, passkeys: bool
) -> None:
    binary = need("aria2c", "aria2")
    deadline = time.monotonic() + TEST_TIMEOUT
    tracker = start_tracker(tmp_path, run, SECRET if passkeys else None)

    def announce_url(user: str, passkey_first: bool) -> str:
        if not passkeys:
            return f"http://127.0.0.1:{tracker.port}/announce"
        passkey = make_passkey(SECRET, user)
        path = f"/{passkey}/announce" if passkey_first else f"/announce/{passkey}"
        return f"http://127.0.0.1:{tracker.port}{path}"

    content = make_content(tmp_path / "seeder")
    size = sum(p.stat().st_size for p in content.iterdir())
    # aria2's torrent carries the form torrents should carry (clients derive /{passkey}/scrape
    # from it); libtorrent's SSRF mitigation only announces to a loopback tracker under a path
    # that begins with /announce, so the seeder gets the /announce/{passkey} form
    torrent = make_torrent(content, announce_url(LEECHER, True), v1_only=True, piece_size=PIECE)
    v1 = lt.torrent_info(torrent).info_hashes().v1.to_bytes().hex()
    status, body = upload_torrent(tracker.port, torrent, KEY)
    assert (status, body) == (201, {"status": "created", "info_hash": v1}), body
    (tmp_path / "v1.torrent").write_bytes(torrent)

    seeder = Client(
        "libtorrent-seeder",
        without_trackers(torrent),
        tmp_path / "seeder",
        announce_url(SEEDER, False),
    )
    run.clients.append(seeder)
    seeder.wait(lambda: seeder.status().is_seeding, "the seeder to check its files", deadline)
    seeder.wait(lambda: seeder.replies > 0, "the seeder's first announce", deadline)

    leecher = aria2c(binary, tmp_path, tmp_path / "v1.torrent", tmp_path / "aria2", free_port())
    run.processes.append(leecher)
    code = leecher.wait(deadline - time.monotonic())
    assert code == 0, leecher.log()
    assert digests(tmp_path / "aria2" / content.name) == digests(content)

    # aria2 with --seed-time=0 stops without ever sending event=completed: the completion is
    # counted from its left=0
    status, found = eventually(
        lambda: entry(tracker, v1), lambda r: r[1].get("completions") == 1, deadline
    )
    assert status == 200 and found["completions"] == 1, (found, leecher.log())
    assert (found["seeders"], found["leechers"]) == (1, 0), found  # aria2 said stopped
    if passkeys:  # aria2's traffic, accounted to the user of its passkey
        status, user = get_json(tracker.port, f"/api/users/{LEECHER}", KEY)
        assert status == 200 and user["downloaded"] >= size and user["uploaded"] == 0, user
    tracker.stop()
    assert query_db(tracker.db, "SELECT completions FROM registry WHERE info_hash = ?", v1) == [
        (1,)
    ]


def test_rtorrent_seeding_a_hybrid_serves_a_libtorrent_leecher(tmp_path: Path, run: Run) -> None:
    binary = need("rtorrent", "rtorrent")
    deadline = time.monotonic() + TEST_TIMEOUT
    tracker = start_tracker(tmp_path, run)
    content = make_content(tmp_path / "seeder")
    announce = f"http://127.0.0.1:{tracker.port}/announce"
    torrent = make_torrent(content, announce, v1_only=False, piece_size=PIECE)
    hashes = lt.torrent_info(torrent).info_hashes()
    v1, v2 = hashes.v1.to_bytes().hex(), hashes.v2.to_bytes().hex()
    status, body = upload_torrent(tracker.port, torrent, KEY)
    assert (status, body) == (201, {"status": "created", "info_hash": v2, "v1_info_hash": v1})
    (tmp_path / "hybrid.torrent").write_bytes(torrent)

    original = digests(content)
    # rtorrent knows no pad files: it seeds the original data once they are there as files
    assert write_pad_files(torrent, tmp_path / "seeder") >= 1
    seeder = rtorrent(
        binary, tmp_path, tmp_path / "hybrid.torrent", tmp_path / "seeder", free_port()
    )
    run.processes.append(seeder)
    # rtorrent announces only the v1 hash, as a seeder
    status, found = eventually(
        lambda: entry(tracker, v2), lambda r: r[1].get("seeders") == 1, deadline
    )
    assert found["seeders"] == 1, (found, seeder.log(), rtorrent_log(tmp_path))

    leecher = Client("libtorrent-leecher", torrent, tmp_path / "leecher", announce)
    run.clients.append(leecher)
    leecher.wait(
        lambda: leecher.status().is_seeding,
        f"the download from rtorrent\n{rtorrent_log(tmp_path)}",
        deadline,
    )
    assert not leecher.errors, leecher.report()
    assert digests(tmp_path / "leecher" / content.name) == original

    # one entry: rtorrent (v1 only) and libtorrent (both hashes) each counted once, and the
    # download once
    status, found = eventually(
        lambda: entry(tracker, v2),
        lambda r: (r[1].get("completions"), r[1].get("seeders")) == (1, 2),
        deadline,
    )
    assert (status, found["completions"], found["seeders"], found["leechers"]) == (200, 1, 2, 0)
    assert entry(tracker, v1) == (200, found)


def rtorrent_log(workdir: Path) -> str:
    path = workdir / "rtorrent.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no rtorrent log)"


def test_a_missing_client_skips_with_how_to_install_it_or_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(other_clients.shutil, "which", lambda command: None)
    monkeypatch.delenv(other_clients.REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y rtorrent"):
        need("rtorrent", "rtorrent")
    monkeypatch.setenv(other_clients.REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y aria2"):
        need("aria2c", "aria2")
