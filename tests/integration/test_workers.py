"""``twistd -n weightless --workers 3``: one tracker made of several processes."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import udp_client
from helpers import announce_path, bdecode, compact_peers

from integration.process import V1, V2, Tracker, seed
from integration.waiting import wait_for
from weightless.cluster.owner import owner_of
from weightless.wire import udp

pytestmark = pytest.mark.integration

HASHES = [hashlib.sha1(b"swarm %d" % i).digest() for i in range(6)]


def workers_of(tracker: Tracker) -> list[int]:
    assert tracker.proc is not None
    out = subprocess.run(
        ["pgrep", "-P", str(tracker.proc.pid)], capture_output=True, text=True, check=False
    ).stdout
    return [int(pid) for pid in out.split()]


def get_from(tracker: Tracker, target: bytes, source: str = "127.0.0.1") -> tuple[int, bytes]:
    """One request on a new connection from ``source`` (any 127/8 address is local), so the
    kernel may hand it to any worker."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", tracker.port, timeout=10, source_address=(source, 0)
    )
    try:
        conn.request("GET", target.decode("ascii"))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def http_announce(tracker: Tracker, info_hash: bytes, n: int, **params: Any) -> dict[bytes, Any]:
    status, body = get_from(
        tracker,
        announce_path(info_hash, 10000 + n, numwant=200, **params),
        f"127.0.{n // 200}.{n % 200 + 2}",
    )
    assert status == 200
    reply: dict[bytes, Any] = bdecode(body)
    return reply


def udp_announce(
    tracker: Tracker, info_hash: bytes, n: int, left: int = 100, event: int = udp.EVENT_STARTED
) -> udp_client.AnnounceResponse:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.bind((f"127.1.{n // 200}.{n % 200 + 2}", 0))
        address = ("127.0.0.1", tracker.port)
        s.sendto(udp_client.encode_connect_request(1), address)
        connected = udp_client.parse_response(s.recv(2048))
        assert isinstance(connected, udp_client.ConnectResponse)
        s.sendto(
            udp_client.encode_announce_request(
                connected.connection_id,
                2,
                info_hash,
                b"-UD0001-%012d" % n,
                0,
                left,
                0,
                event,
                port=20000 + n,
                num_want=200,
            ),
            address,
        )
        reply = udp_client.parse_response(s.recv(4096))
        assert isinstance(reply, udp_client.AnnounceResponse), reply
        return reply


class Cluster(Tracker):
    def start(self) -> Cluster:
        """Started once every worker answers, not just the first."""
        super().start()
        workers = int(self.args[self.args.index("--workers") + 1])
        wait_for(lambda: self.log().count("FrontFactory starting") >= workers, "every worker")
        assert "ended" not in self.log(), self.log()
        return self


def cluster(tmp_path: Path, trackers: list[Tracker], *args: str, workers: int = 3) -> Cluster:
    tracker = Cluster(tmp_path, "--workers", str(workers), "--rate-limit", "0", *args)
    tracker.args += ["--udp", str(tracker.port), "--udp-interface", "127.0.0.1"]
    trackers.append(tracker)
    return tracker


def test_every_swarm_is_whole_whatever_worker_gets_the_request(
    tmp_path: Path, trackers: list[Tracker]
) -> None:
    tracker = cluster(tmp_path, trackers, "--open").start()
    assert len(workers_of(tracker)) == 3
    sent = 0
    n = 0
    for info_hash in HASHES:
        for _ in range(8):
            http_announce(tracker, info_hash, n)
            n, sent = n + 1, sent + 1
        for _ in range(4):
            udp_announce(tracker, info_hash, n)
            n, sent = n + 1, sent + 1
    for i, info_hash in enumerate(HASHES):
        reply = http_announce(tracker, info_hash, 900 + i, left=0)
        assert len(compact_peers(reply[b"peers"])) == 12  # every other peer, over both protocols
        assert (reply[b"complete"], reply[b"incomplete"]) == (1, 12)
        over_udp = udp_announce(tracker, info_hash, 950 + i)
        assert (over_udp.seeders, over_udp.leechers) == (1, 13)
        assert len(over_udp.peers) // 6 == 13
        sent += 2
    files = tracker.scrape(*HASHES)
    assert {h: (f[b"complete"], f[b"incomplete"]) for h, f in files.items()} == {
        h: (1, 13) for h in HASHES
    }
    assert tracker.metric("tracker_announces_total") == sent
    assert tracker.metric("tracker_scrapes_total") == 1
    assert tracker.metric("tracker_active_peers") == 6 * 14
    assert tracker.metric("tracker_swarms_total") == 6


def test_registry_across_workers(tmp_path: Path, trackers: list[Tracker]) -> None:
    tracker = cluster(tmp_path, trackers)
    seed(tracker, [(V2, V1, "hybrid")])
    tracker.start()
    v1, v2 = bytes.fromhex(V1), bytes.fromhex(V2)[:20]
    for n in range(6):  # one swarm for counting, from any worker
        reply = http_announce(tracker, v1 if n % 2 else v2, n)
        assert reply.get(b"incomplete") == n + 1, reply
    http_announce(tracker, v1, 0, left=0)  # finished: no event (aria2, rtorrent)
    http_announce(tracker, v2, 0, event="completed", left=0)  # not counted again

    def entry() -> dict[str, Any]:
        status, body = get_from(tracker, f"/api/registry?info_hash={V2}".encode())
        assert status == 200, body
        found: dict[str, Any] = json.loads(body)
        return found

    wait_for(lambda: (entry()["seeders"], entry()["leechers"]) == (1, 5), "live counts")
    wait_for(lambda: entry()["completions"] == 1, "the completion, counted once")

    status, _ = tracker_delete(tracker, V2)
    assert status == 200
    for n in range(12):  # every worker refuses both hashes at once
        reply = http_announce(tracker, v1 if n % 2 else v2, 100 + n)
        assert b"blocked" in reply[b"failure reason"]


# a hybrid whose two wire hashes belong to different workers' routing (first four bytes
# modulo 3): UDP announces are steered by the kernel to the v1 hash's worker, and forwarded
SPLIT_V2 = hashlib.sha256(b"split hybrid").hexdigest()
SPLIT_V1 = hashlib.sha1(b"split hybrid").hexdigest()


def test_hybrid_peer_lists_follow_the_hash_across_workers(
    tmp_path: Path, trackers: list[Tracker]
) -> None:
    v1, v2 = bytes.fromhex(SPLIT_V1), bytes.fromhex(SPLIT_V2)
    assert owner_of(v1, 3) != owner_of(v2[:20], 3)
    tracker = cluster(tmp_path, trackers)
    seed(tracker, [(SPLIT_V2, SPLIT_V1, "split hybrid")])
    tracker.start()

    def http_peer(n: int) -> tuple[str, int]:
        return f"127.0.{n // 200}.{n % 200 + 2}", 10000 + n

    def udp_peer(n: int) -> tuple[str, int]:
        return f"127.1.{n // 200}.{n % 200 + 2}", 20000 + n

    http_announce(tracker, v1, 1)  # a v1-only client
    http_announce(tracker, v2[:20], 2)  # a v2 announce with the truncated hash
    http_announce(tracker, v1, 3)  # libtorrent: under both hashes
    http_announce(tracker, v2[:20], 3)
    udp_announce(tracker, v1, 4)
    udp_announce(tracker, v2[:20], 5)

    # a seeder on the v1 list: every v1 leecher, none that announced only v2
    reply = http_announce(tracker, v1, 6, left=0)
    assert set(compact_peers(reply[b"peers"])) == {http_peer(1), http_peer(3), udp_peer(4)}
    assert (reply[b"complete"], reply[b"incomplete"]) == (1, 5)  # peer 3 counted once
    # the full 32-byte v2 hash is the truncated one's list
    reply = http_announce(tracker, v2, 7)
    assert set(compact_peers(reply[b"peers"])) == {http_peer(2), http_peer(3), udp_peer(5)}
    assert (reply[b"complete"], reply[b"incomplete"]) == (1, 6)
    over_udp = udp_announce(tracker, v2[:20], 8)
    assert set(udp_client.decode_peers(over_udp.peers)) == {
        http_peer(2),
        http_peer(3),
        http_peer(7),
        udp_peer(5),
    }
    assert (over_udp.seeders, over_udp.leechers) == (1, 7)
    over_udp = udp_announce(tracker, v1, 9)
    assert set(udp_client.decode_peers(over_udp.peers)) == {
        http_peer(1),
        http_peer(3),
        http_peer(6),
        udp_peer(4),
    }
    files = tracker.scrape(v1, v2[:20])
    assert {(f[b"complete"], f[b"incomplete"]) for f in files.values()} == {(1, 8)}

    # peer 3 finishes: it says so under v1 without the event, then completed under v2
    http_announce(tracker, v1, 3, left=0)
    reply = http_announce(tracker, v2[:20], 3, event="completed", left=0)
    assert (reply[b"complete"], reply[b"incomplete"], reply[b"downloaded"]) == (2, 7, 1)
    # a UDP peer finishes in its stopped announce
    udp_announce(tracker, v1, 4, left=0, event=udp.EVENT_STOPPED)

    def entry() -> dict[str, Any]:
        status, body = get_from(tracker, f"/api/registry?info_hash={SPLIT_V2}".encode())
        assert status == 200, body
        found: dict[str, Any] = json.loads(body)
        return found

    wait_for(lambda: entry()["completions"] == 2, "two completions")
    wait_for(lambda: (entry()["seeders"], entry()["leechers"]) == (2, 6), "live counts")


def tracker_delete(tracker: Tracker, info_hash: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", tracker.port, timeout=10)
    try:
        conn.request("DELETE", f"/api/registry?info_hash={info_hash}&reason=test")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_killed_worker_is_replaced(tmp_path: Path, trackers: list[Tracker]) -> None:
    tracker = cluster(tmp_path, trackers, "--open").start()
    before = workers_of(tracker)
    os.kill(before[0], signal.SIGKILL)
    wait_for(
        lambda: len(workers_of(tracker)) == 3 and before[0] not in workers_of(tracker),
        "a new worker",
    )
    for n in range(20):
        assert b"failure reason" not in http_announce(tracker, HASHES[n % 6], n)
    assert "restarting it" in tracker.log()


def test_sigterm_stops_every_process_and_a_restart_restores_the_swarms(
    tmp_path: Path, trackers: list[Tracker]
) -> None:
    tracker = cluster(tmp_path, trackers, "--open").start()
    pids = workers_of(tracker)
    for n in range(30):
        http_announce(tracker, HASHES[n % 6], n)
    tracker.stop()  # SIGTERM, and it must shut down cleanly
    for pid in pids:
        wait_for(lambda pid=pid: not os.path.exists(f"/proc/{pid}"), f"worker {pid} to end")
    assert (tmp_path / "weightless.swarms").exists()

    tracker.args[tracker.args.index("--workers") + 1] = "2"  # another worker count
    os.rename(tracker.out, tmp_path / "first-run.log")
    tracker.start()
    files = tracker.scrape(*HASHES)
    assert sum(f[b"incomplete"] for f in files.values()) == 30
    assert all(f[b"incomplete"] == 5 for f in files.values())


def test_sigkill_of_the_supervisor_leaves_no_worker(
    tmp_path: Path, trackers: list[Tracker]
) -> None:
    tracker = cluster(tmp_path, trackers, "--open").start()
    pids = workers_of(tracker)
    assert len(pids) == 3
    tracker.kill()  # SIGKILL
    for pid in pids:
        wait_for(lambda pid=pid: not _alive(pid), f"worker {pid} to end")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("scheme", ["http", "udp"])
def test_a_libtorrent_download_is_one_completion_on_three_workers(
    tmp_path: Path, trackers: list[Tracker], scheme: str
) -> None:
    """A real hybrid download through three workers: the announces of the seeder and the
    leecher (two hashes each, whichever worker the kernel hands them to) end as one
    completion in the registry, and stay one after both clients stop."""
    import libtorrent as lt

    from integration.lt_helpers import Client, get_json, make_content, make_torrent, upload_torrent

    deadline = time.monotonic() + 180
    key = "workers registry key"
    tracker = cluster(tmp_path, trackers)
    tracker.env["REGISTRY_KEY"] = key
    tracker.start()
    content = make_content(tmp_path / "seeder")
    torrent = make_torrent(content)
    status, body = upload_torrent(tracker.port, torrent, key)
    assert status == 201, body
    v2 = lt.torrent_info(torrent).info_hashes().v2.to_bytes().hex()
    url = (
        f"http://127.0.0.1:{tracker.port}/announce"
        if scheme == "http"
        else f"udp://127.0.0.1:{tracker.port}/announce"
    )
    clients = []
    try:
        seeder = Client("seeder", torrent, tmp_path / "seeder", url)
        clients.append(seeder)
        seeder.wait(lambda: seeder.status().is_seeding, "the seeder to check its files", deadline)
        seeder.wait(lambda: seeder.replies >= 2, "the seeder's announces", deadline)
        leecher = Client("leecher", torrent, tmp_path / "leecher", url)
        clients.append(leecher)
        leecher.wait(lambda: leecher.status().is_seeding, "the download", deadline)

        def entry() -> dict[str, Any]:
            found: dict[str, Any] = get_json(tracker.port, f"/api/registry?info_hash={v2}")[1]
            return found

        wait_for(lambda: entry()["completions"] == 1, lambda: f"one completion: {entry()}")
        # every worker answers it from now on (each read is a new connection: any worker)
        assert [entry()["completions"] for _ in range(12)] == [1] * 12
        for client in clients:
            client.close()
        wait_for(lambda: entry()["seeders"] == 0, lambda: f"an empty swarm: {entry()}")
        assert [entry()["completions"] for _ in range(12)] == [1] * 12
        assert not seeder.errors and not leecher.errors, (seeder.report(), leecher.report())
    finally:
        for client in clients:
            client.close()
