"""The real ``twistd -n weightless`` process, on real sockets, with a SQLite file."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import (
    announce_path,
    bdecode,
    compact_peers,
    get_request,
    make_passkey,
    parse_replies,
    scrape_path,
)

from integration.ports import free_port
from integration.process import (
    BLOCKED,
    TRACKER_ENV,
    TWISTD,
    UNREGISTERED,
    V1,
    V1_ONLY,
    V2,
    Tracker,
    query_db,
    refused,
    seed,
)

pytestmark = pytest.mark.integration


def test_open_mode(new_tracker: Callable[..., Tracker]) -> None:
    tracker = new_tracker("--open", "--rate-limit", "0").start()
    info_hash = hashlib.sha1(b"open swarm").digest()

    first = tracker.announce(announce_path(info_hash, 6881, event="started"))
    assert b"failure reason" not in first
    assert compact_peers(first[b"peers"]) == []
    second = tracker.announce(announce_path(info_hash, 6882, event="started", left=0))
    assert compact_peers(second[b"peers"]) == [("127.0.0.1", 6881)]
    again = tracker.announce(announce_path(info_hash, 6881))
    assert compact_peers(again[b"peers"]) == [("127.0.0.1", 6882)]
    assert (again[b"complete"], again[b"incomplete"]) == (1, 1)

    other = hashlib.sha1(b"nobody here").digest()
    files = tracker.scrape(info_hash, other)
    assert files[info_hash] == {b"complete": 1, b"downloaded": 0, b"incomplete": 1}
    assert files[other] == {b"complete": 0, b"downloaded": 0, b"incomplete": 0}

    status, _, body = tracker.get(b"/health")
    assert (status, body) == (200, b"OK")

    before = tracker.metric("tracker_announces_total")
    for port in (7001, 7002, 7003):
        tracker.announce(announce_path(info_hash, port))
    assert tracker.metric("tracker_announces_total") == before + 3
    assert tracker.metric("tracker_active_peers") == 5
    assert tracker.metric("tracker_swarms_total") == 1

    # keep-alive over a real socket: two pipelined announces, two replies, then close
    with socket.create_connection(("127.0.0.1", tracker.port), timeout=10) as s:
        s.sendall(
            get_request(announce_path(info_hash, 7004))
            + get_request(announce_path(info_hash, 7005), b"Connection: close")
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    replies = parse_replies(data)
    assert [r.status for r in replies] == [200, 200]
    assert all(b"peers" in bdecode(r.body) for r in replies)


def test_default_rate_limit(new_tracker: Callable[..., Tracker]) -> None:
    """20 announces and a scrape from one address, pipelined on one connection so that they
    arrive together however slow the machine is (one at a time, they could be spread over
    the seconds that refill the bucket)."""
    tracker = new_tracker("--open").start()  # the /health polls at start are not limited
    info_hash = hashlib.sha1(b"limited").digest()
    requests = [get_request(announce_path(info_hash, 7000 + i)) for i in range(20)]
    requests.append(get_request(scrape_path(info_hash), b"Connection: close"))
    with socket.create_connection(("127.0.0.1", tracker.port), timeout=10) as s:
        s.sendall(b"".join(requests))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    *announced, scraped = parse_replies(data)
    assert [r.status for r in announced] == [200] * 20
    reasons = [bdecode(r.body).get(b"failure reason") for r in announced]
    assert reasons[:5] == [None] * 5
    assert b"Rate limit exceeded. Please slow down." in reasons
    assert scraped.status == 429
    assert int(scraped.headers[b"retry-after"]) >= 1


# -- listed mode


@pytest.fixture
def listed(tmp_path: Path, trackers: list[Tracker]) -> Tracker:
    tracker = Tracker(tmp_path, "--rate-limit", "0")
    trackers.append(tracker)
    seed(tracker, [(V2, V1, "hybrid"), (V1_ONLY, None, "v1 only")], (BLOCKED,))
    return tracker.start()


def test_listed_mode_serves_only_registered_hashes(listed: Tracker) -> None:
    refused_reply = listed.announce(announce_path(UNREGISTERED, 6881))
    assert b"unregistered" in refused_reply[b"failure reason"]
    assert listed.metric("tracker_active_peers") == 0

    registered = bytes.fromhex(V1_ONLY)
    assert b"failure reason" not in listed.announce(announce_path(registered, 6881))
    body = listed.announce(announce_path(registered, 6882))
    assert compact_peers(body[b"peers"]) == [("127.0.0.1", 6881)]
    assert listed.metric("tracker_registered_torrents") == 2


def test_hybrid_v1_and_v2_announces_are_counted_together_listed_apart(listed: Tracker) -> None:
    v1, v2 = bytes.fromhex(V1), bytes.fromhex(V2)
    listed.announce(announce_path(v1, 6881))  # a v1-only client
    body = listed.announce(announce_path(v2[:20], 6882))
    assert compact_peers(body[b"peers"]) == [] and body[b"incomplete"] == 2
    body = listed.announce(announce_path(v1, 6882))  # a hybrid client: both hashes
    assert compact_peers(body[b"peers"]) == [("127.0.0.1", 6881)]
    assert body[b"incomplete"] == 2
    body = listed.announce(announce_path(v2, 6883))  # the full 32-byte v2 hash
    assert compact_peers(body[b"peers"]) == [("127.0.0.1", 6882)]
    files = listed.scrape(v1, v2[:20])
    assert files[v1][b"incomplete"] == files[v2[:20]][b"incomplete"] == 3
    assert listed.metric("tracker_swarms_total") == 1
    assert listed.metric("tracker_active_peers") == 3


def test_blocked_hash_is_refused_and_skipped_by_scrape(listed: Tracker) -> None:
    blocked = bytes.fromhex(BLOCKED)
    body = listed.announce(announce_path(blocked, 6881))
    assert b"blocked" in body[b"failure reason"]
    registered = bytes.fromhex(V1_ONLY)
    files = listed.scrape(blocked, registered)
    assert list(files) == [registered]


def test_clean_stop_flushes_completions(tmp_path: Path, trackers: list[Tracker]) -> None:
    tracker = Tracker(tmp_path, "--rate-limit", "0")
    trackers.append(tracker)
    seed(tracker, [(V1_ONLY, None, "v1 only")])
    tracker.start()
    info_hash = bytes.fromhex(V1_ONLY)
    tracker.announce(announce_path(info_hash, 6881, event="started"))
    body = tracker.announce(announce_path(info_hash, 6881, event="completed", left=0))
    assert body[b"downloaded"] == 1
    tracker.stop()
    assert query_db(
        tracker.db, "SELECT completions FROM registry WHERE info_hash = ?", V1_ONLY
    ) == [(1,)]
    # and a restarted tracker reports it
    tracker.start()
    assert tracker.scrape(info_hash)[info_hash][b"downloaded"] == 1


# -- passkeys


def test_passkeys(new_tracker: Callable[..., Tracker]) -> None:
    secret = "correct horse battery staple"
    tracker = new_tracker("--open", "--rate-limit", "0", env={"TRACKER_SECRET": secret}).start()
    info_hash = hashlib.sha1(b"private").digest()

    for target in (
        announce_path(info_hash, 6881),
        announce_path(info_hash, 6881).replace(b"/announce", b"/announce/", 1),
        announce_path(info_hash, 6881, passkey=make_passkey("wrong secret", "alice")),
    ):
        assert b"passkey" in tracker.announce(target)[b"failure reason"]
    assert tracker.metric("tracker_active_peers") == 0

    passkey = make_passkey(secret, "alice")
    first = tracker.announce(
        announce_path(info_hash, 6881, passkey, event="started", uploaded=100, downloaded=200)
    )
    assert b"failure reason" not in first
    tracker.announce(announce_path(info_hash, 6881, passkey, uploaded=300, downloaded=1000))
    tracker.stop()
    rows = query_db(tracker.db, "SELECT uploaded, downloaded FROM users WHERE user_id = 'alice'")
    assert rows == [(300, 1000)]

    # across a restart the client's totals keep counting from where they were
    tracker.start()
    tracker.announce(announce_path(info_hash, 6881, passkey, uploaded=350, downloaded=1100))
    tracker.stop()
    rows = query_db(tracker.db, "SELECT uploaded, downloaded FROM users WHERE user_id = 'alice'")
    assert rows == [(350, 1100)]


# -- bad options


@pytest.mark.parametrize(
    ("option", "mentions"),
    [
        (["--http", "tcp:70000"], "--http"),
        (["--database", "ftp://x"], "--database"),
        (["--rate-limit", "-1"], "--rate-limit"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_option_exits_with_one_line(tmp_path: Path, option: list[str], mentions: str) -> None:
    port = free_port()
    args = ["--http", f"tcp:{port}:interface=127.0.0.1", "--udp", "off"]
    args += ["--database", f"sqlite:///{tmp_path / 'x.db'}"]
    env = {k: v for k, v in os.environ.items() if k not in TRACKER_ENV}
    done = subprocess.run(
        [str(TWISTD), "-n", "--pidfile=", "weightless", *args, *option],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode != 0
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("weightless: ")
    assert mentions in lines[0]
    assert b"Traceback" not in done.stdout + done.stderr
    assert refused(port)
    assert not (tmp_path / "x.db").exists()


def test_unopenable_database_exits(tmp_path: Path) -> None:
    port = free_port()
    done = subprocess.run(
        [str(TWISTD), "-n", "--pidfile=", "weightless", "--http", f"tcp:{port}"]
        + ["--udp", "off", "--database", "sqlite:///no/such/dir/x.db"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k not in TRACKER_ENV},
        capture_output=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert b"could not start: unable to open database file" in done.stdout + done.stderr
    assert refused(port)
