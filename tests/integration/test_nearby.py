"""Peers of the announcer's own network first, through a real ``twistd weightless`` process:
HTTP and UDP announces from loopback source addresses (127.x.y.z: each /24 a network), for
one process and for three workers."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
import udp_client
from helpers import announce_path, bdecode, compact_peers

from integration.process import Tracker
from integration.test_workers import cluster, get_from

pytestmark = pytest.mark.integration

HASH = hashlib.sha1(b"nearby swarm").digest()


def http(tracker: Tracker, source: str, port: int, **params: object) -> list[tuple[str, int]]:
    status, body = get_from(tracker, announce_path(HASH, port, numwant=8, **params), source)
    assert status == 200, body
    return compact_peers(bdecode(body)[b"peers"])


def udp(
    tracker: Tracker, source: str, port: int, left: int = 100, event: int = 0
) -> list[tuple[str, int]]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.bind((source, 0))
        address = ("127.0.0.1", tracker.port)
        s.sendto(udp_client.encode_connect_request(1), address)
        connected = udp_client.parse_response(s.recv(2048))
        assert isinstance(connected, udp_client.ConnectResponse)
        request = udp_client.encode_announce_request(
            connected.connection_id,
            2,
            HASH,
            b"-NB0001-%012d" % port,
            0,
            left,
            0,
            event,
            port=port,
            num_want=8,
        )
        s.sendto(request, address)
        reply = udp_client.parse_response(s.recv(4096))
        assert isinstance(reply, udp_client.AnnounceResponse), reply
        return udp_client.decode_peers(reply.peers)


@pytest.mark.parametrize("workers", [1, 3])
def test_peers_of_the_same_network_come_first(
    tmp_path: Path, trackers: list[Tracker], workers: int
) -> None:
    tracker = cluster(tmp_path, trackers, "--open", workers=workers)
    tracker.start()
    # 30 seeders on other networks, then 3 seeders and 2 leechers on 127.0.7.0/24
    for n in range(30):
        http(tracker, f"127.0.{20 + n}.2", 30000 + n, left=0)
    near = {("127.0.7.2", 31001), ("127.0.7.3", 31002), ("127.0.7.4", 31003)}
    for host, port in sorted(near):
        udp(tracker, host, port, left=0)
    near_leechers = {("127.0.7.5", 31004), ("127.0.7.6", 31005)}
    for host, port in sorted(near_leechers):
        http(tracker, host, port)
    stopped = 3  # each probing announcer leaves again (BEP 15 event number)
    for attempt in range(4):  # whichever worker takes the connection
        got = http(tracker, "127.0.7.99", 32000 + attempt)
        http(tracker, "127.0.7.99", 32000 + attempt, event="stopped")
        assert set(got[:3]) == near and set(got[3:5]) == near_leechers, got
        assert len(got) == len(set(got)) == 8
        assert all(not host.startswith("127.0.7.") for host, _ in got[5:])
        got = udp(tracker, "127.0.7.98", 33000 + attempt)
        udp(tracker, "127.0.7.98", 33000 + attempt, event=stopped)
        assert set(got[:3]) == near and set(got[3:5]) == near_leechers, got
        # a seeder of the network gets its network's leechers first, then the others' ...
        got = udp(tracker, "127.0.7.97", 34000 + attempt, left=0)
        udp(tracker, "127.0.7.97", 34000 + attempt, left=0, event=stopped)
        assert set(got[:2]) == near_leechers, got
        # ... and an announcer alone on its network gets seeders
        got = http(tracker, f"127.0.{90 + attempt}.2", 35000 + attempt)
        assert len(got) == 8
