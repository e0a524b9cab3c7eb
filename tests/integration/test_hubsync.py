"""Usage sync to a hub from a real ``twistd weightless --workers 3`` with passkeys: users'
traffic announced to any worker reaches a hub written here (a real socket) that hangs, drops
an answer after taking the batch and answers 500, across a restart of the tracker: every
byte of every user once (counted by distinct sync_id), in the order of the batches."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from helpers import announce_path, make_passkey

from integration.process import Tracker
from integration.test_workers import Cluster, get_from
from integration.waiting import wait_for

pytestmark = pytest.mark.integration

SECRET = "hub sync secret"
KEY = "hub sync registry key"
HASH = hashlib.sha1(b"hub sync swarm").digest()
USERS = ["alice", "bob", "carol-7"]


class Hub(ThreadingHTTPServer):
    """Takes each batch once per sync_id; misbehaves as ``script`` says, one entry per
    request: ok, hang (takes it, answers nothing), drop (takes it, closes without an
    answer), 500 (does not take it)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.script: list[str] = []
        self.applied: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.seen: list[tuple[str, str]] = []
        self.keys: set[str | None] = set()
        self.release = threading.Event()

    def totals(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        with self.lock:
            for deltas in self.applied.values():
                for user, d in deltas.items():
                    t = found.setdefault(user, [0, 0])
                    t[0] += d["Uploaded"]
                    t[1] += d["Downloaded"]
        return found


class Handler(BaseHTTPRequestHandler):
    server: Hub

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        hub = self.server
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/api/internal/usage-sync"
        with hub.lock:
            what = hub.script.pop(0) if hub.script else "ok"
            hub.seen.append((doc["sync_id"], what))
            hub.keys.add(self.headers.get("X-Weightless-Key"))
            if what != "500" and doc["sync_id"] not in hub.applied:
                hub.applied[doc["sync_id"]] = doc["deltas"]
                hub.order.append(doc["sync_id"])
        if what == "hang":
            hub.release.wait(30)
            return
        if what == "drop":
            self.close_connection = True
            return
        self.send_response(500 if what == "500" else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@pytest.fixture
def hub() -> Iterator[Hub]:
    server = Hub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def test_every_byte_reaches_the_hub_once_across_a_restart(
    tmp_path: Path, trackers: list[Tracker], hub: Hub
) -> None:
    tracker = Cluster(tmp_path, "--workers", "3", "--rate-limit", "0", "--open")
    tracker.env.update(
        {
            "TRACKER_SECRET": SECRET,
            "REGISTRY_KEY": KEY,
            "HUB_URL": f"http://127.0.0.1:{hub.server_address[1]}",
        }
    )
    trackers.append(tracker)
    hub.script = ["hang", "drop", "500"]
    tracker.start()
    totals = {u: [0, 0] for u in USERS}

    def announce(round_: int) -> None:
        """Every user's three peers report new running totals (from any worker)."""
        for u, user in enumerate(USERS):
            for peer in range(3):
                up, down = round_ * (1000 + u * 10 + peer), round_ * (7 + u + peer)
                target = announce_path(
                    HASH,
                    20000 + u * 10 + peer,
                    passkey=make_passkey(SECRET, user),
                    uploaded=up,
                    downloaded=down,
                    event="started" if round_ == 0 else "",
                )
                status, body = get_from(tracker, target, f"127.0.{u}.{peer + 2}")
                assert status == 200 and b"failure" not in body, body
        for u, user in enumerate(USERS):
            totals[user] = [
                sum(round_ * (1000 + u * 10 + p) for p in range(3)),
                sum(round_ * (7 + u + p) for p in range(3)),
            ]

    announce(0)
    announce(1)
    # the hub hangs (5 s), then takes a batch but drops the answer: nothing is confirmed
    wait_for(lambda: len(hub.seen) >= 2, lambda: f"two sends: {hub.seen}", timeout=60)
    announce(2)
    tracker.stop()  # a clean stop: what was queued is in the database
    tracker.start()
    announce(3)
    wait_for(
        lambda: hub.totals() == {u: t for u, t in totals.items()},
        lambda: f"every byte at the hub: {hub.totals()} != {totals}\n{hub.seen}",
        timeout=90,
    )
    # once each: a batch sent again kept its sync_id, and the hub took it only once
    assert hub.order == list(dict.fromkeys(sid for sid, what in hub.seen if what != "500"))
    resent = [sid for sid, what in hub.seen if what in ("hang", "drop", "500")]
    assert resent and all(sum(s == sid for s, _ in hub.seen) >= 2 for sid in resent), hub.seen
    assert hub.keys == {KEY}
    sent = tracker.metric("tracker_hub_batches_sent_total")
    assert sent >= 1 and tracker.metric("tracker_hub_batches_waiting") == 0
