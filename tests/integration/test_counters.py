"""Traffic and completions reach the database on a real tracker, one process and three
workers: a passkey announce with a 20-digit ``uploaded`` does not poison the writes; every
user's traffic and every completion reaches the database, the huge total as 2^63-1 (an
integer), and a stop leaves no pending file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import announce_path, bdecode, make_passkey

from integration.process import V1, V2, Tracker, query_db, seed
from integration.test_workers import cluster, get_from
from integration.waiting import wait_for

pytestmark = pytest.mark.integration
MAX = (1 << 63) - 1


def exercise(tracker: Tracker, tmp_path: Path) -> None:
    v1 = bytes.fromhex(V1)
    mallory, alice = make_passkey("s", "mallory"), make_passkey("s", "alice")
    huge = "99999999999999999999"
    for n, (key, up) in enumerate([(mallory, huge), (alice, "0")]):
        reply = http_announce_key(tracker, v1, n, key, uploaded=up, event="started")
        assert b"failure reason" not in reply, reply
    http_announce_key(tracker, v1, 0, mallory, uploaded=huge + "0", downloaded="5", left=0,
                      event="completed")  # fmt: skip
    http_announce_key(tracker, v1, 1, alice, uploaded="700", downloaded="300", left=0,
                      event="completed")  # fmt: skip
    refused = http_announce_key(tracker, v1, 2, alice, uploaded="-1")
    assert b"non-negative" in refused[b"failure reason"]

    def written() -> bool:
        rows = dict(
            (u, (up, down)) for u, up, down in query_db(
                tracker.db, "SELECT user_id, uploaded, downloaded FROM users"
            )
        )  # fmt: skip
        done = query_db(tracker.db, "SELECT completions FROM registry")
        return rows == {"mallory": (MAX, 5), "alice": (700, 300)} and done == [(2,)]

    wait_for(written, "the flush of both users and both completions")
    [(value, kind)] = query_db(
        tracker.db, "SELECT uploaded, typeof(uploaded) FROM users WHERE user_id = 'mallory'"
    )
    assert (value, kind) == (MAX, "integer")
    tracker.stop()
    assert not list(tmp_path.glob("weightless.pending.*"))


def http_announce_key(
    tracker: Tracker, info_hash: bytes, n: int, passkey: str, **params: str
) -> dict[bytes, Any]:
    status, body = get_from(
        tracker,
        announce_path(info_hash, 10000 + n, passkey=passkey, **params),
        f"127.0.4.{n + 2}",
    )
    assert status == 200
    reply: dict[bytes, Any] = bdecode(body)
    return reply


def test_one_process(tmp_path: Path, trackers: list[Tracker]) -> None:
    tracker = Tracker(tmp_path, "--rate-limit", "0", env={"TRACKER_SECRET": "s"})
    trackers.append(tracker)
    seed(tracker, [(V2, V1, "hybrid")])
    exercise(tracker.start(), tmp_path)


def test_three_workers(tmp_path: Path, trackers: list[Tracker]) -> None:
    tracker = cluster(tmp_path, trackers)
    tracker.env["TRACKER_SECRET"] = "s"
    seed(tracker, [(V2, V1, "hybrid")])
    exercise(tracker.start(), tmp_path)
