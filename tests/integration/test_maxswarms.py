"""``--open --max-swarms N`` on a real tracker, one process and three workers: beyond N swarms
a new hash gets ``tracker is full`` over HTTP and over UDP; the swarms held are served."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import udp_client

from integration.ports import free_port
from integration.process import Tracker
from integration.test_workers import cluster, http_announce

pytestmark = pytest.mark.integration
FULL = b"tracker is full"


def hashes(n: int) -> list[bytes]:
    return [hashlib.sha1(b"capped %d" % i).digest() for i in range(n)]


def udp_try(port: int, info_hash: bytes, n: int) -> udp_client.Response:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.bind((f"127.2.0.{n + 2}", 0))
        s.sendto(udp_client.encode_connect_request(1), ("127.0.0.1", port))
        connected = udp_client.parse_response(s.recv(2048))
        assert isinstance(connected, udp_client.ConnectResponse)
        packet = udp_client.encode_announce_request(
            connected.connection_id,
            2,
            info_hash,
            b"-UD0001-%012d" % n,
            0,
            100,
            0,
            2,
            port=20000 + n,
        )
        s.sendto(packet, ("127.0.0.1", port))
        return udp_client.parse_response(s.recv(4096))


def test_one_process(new_tracker: Callable[..., Tracker]) -> None:
    udp_port = free_port()
    tracker = new_tracker(
        "--open",
        "--max-swarms",
        "3",
        "--rate-limit",
        "0",
        "--udp",
        str(udp_port),
        "--udp-interface",
        "127.0.0.1",
    ).start()
    held = hashes(6)
    for i, info_hash in enumerate(held[:3]):
        assert b"failure reason" not in http_announce(tracker, info_hash, i)
    for i, info_hash in enumerate(held[3:]):
        assert http_announce(tracker, info_hash, 10 + i)[b"failure reason"] == FULL
        assert udp_try(udp_port, info_hash, i) == udp_client.ErrorResponse(2, FULL.decode())
    assert isinstance(udp_try(udp_port, held[0], 9), udp_client.AnnounceResponse)
    assert tracker.metric("tracker_swarms_total") == 3
    tracker.stop()


def test_three_workers(tmp_path: Path, trackers: list[Tracker]) -> None:
    """Each worker holds its share of the cap: never more than --max-swarms in all."""
    tracker = cluster(tmp_path, trackers, "--open", "--max-swarms", "6").start()
    refused = 0
    for i, info_hash in enumerate(hashes(40)):
        reply = http_announce(tracker, info_hash, i)
        if b"failure reason" in reply:
            assert reply[b"failure reason"] == FULL
            refused += 1
    assert refused >= 40 - 6
    assert tracker.metric("tracker_swarms_total") <= 6
    full = [h for h in hashes(40) if b"failure reason" in http_announce(tracker, h, 99)]
    answer = udp_try(tracker.port, full[0], 1)
    assert answer == udp_client.ErrorResponse(2, FULL.decode())
    tracker.stop()
