"""``twistd weightless`` as it is put together: options to a Config, the object graph that
``wire`` connects (one process, and one worker of several), and the services that listen."""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path
from typing import Any

import pytest
import udp_client
from helpers import Conn, FakeStore, announce_path, bdecode, compact_peers
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import succeed
from twisted.internet.testing import MemoryReactorClock

from weightless.cluster import sharedcount
from weightless.cluster.owner import owner_of
from weightless.cluster.router import CATALOG, STATS, UDP_DATAGRAM
from weightless.cluster.seat import Seat
from weightless.cluster.sharedlimit import table_size
from weightless.cluster.worker import AdoptedPorts, ClusterLive, Sharing
from weightless.config import Config
from weightless.registry.live import ChangeFeed, CountsPublisher
from weightless.tap import Options, Wiring, services, wire
from weightless.udp.port import UDPService

H = b"\x11" * 20


@pytest.fixture(autouse=True)
def no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "OPEN_TRACKER", "MAX_PEERS", "DATABASE_URL", "DB_PATH"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP", "UDP", "WORKERS", "UDP_KEY_FILE", "SWARM_FILE"):
        monkeypatch.delenv(f"WEIGHTLESS_{name}", raising=False)


def parsed(*argv: str) -> Config:
    options = Options()
    options.parseOptions(list(argv))
    assert options.config is not None
    return options.config


def store() -> Any:
    return FakeStore(lambda: succeed(None))


def config(tmp_path: Path, **settings: Any) -> Config:
    base: dict[str, Any] = {
        "open": True,
        "rate_limit": 0.0,
        "udp": 6969,
        "udp_key_file": str(tmp_path / "udp-key"),
        "swarm_file": None,
    }
    return Config(**{**base, **settings})


class Transport:
    """Where a UDP protocol's datagrams go."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def write(self, data: bytes, addr: Any) -> None:
        self.sent.append((data, addr))


def udp_announce(w: Wiring, host: str, port: int, info_hash: bytes = H) -> Any:
    """Connect and announce as a BEP 15 client at ``host``:``port``; the parsed reply."""
    assert w.udp is not None
    transport = Transport()
    w.udp.transport = transport  # type: ignore[assignment]
    w.udp.datagramReceived(udp_client.encode_connect_request(1), (host, port))
    connected = udp_client.parse_response(transport.sent.pop()[0])
    assert isinstance(connected, udp_client.ConnectResponse)
    peer_id = b"-WL0001-%012d" % port
    request = udp_client.encode_announce_request(
        connected.connection_id, 2, info_hash, peer_id, 0, 100, 0, 2, port=port
    )
    w.udp.datagramReceived(request, (host, port))
    return udp_client.parse_response(transport.sent.pop()[0])


# -- options ---------------------------------------------------------------------------------


def test_options_become_the_config() -> None:
    c = parsed("--open", "--http", "tcp:9000", "--udp", "off", "--max-peers", "30")
    assert (c.open, c.http, c.udp, c.max_peers) == (True, "tcp:9000", None, 30)


def test_the_udp_port_defaults_to_the_http_port() -> None:
    c = parsed("--http", "tcp:9001", "--rate-limit", "0", "--trusted-proxy", "10.0.0.0/8")
    assert c.udp == 9001
    assert c.rate_limit == 0
    assert [str(n) for n in c.trusted_proxies] == ["10.0.0.0/8"]


def test_a_bad_option_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parsed("--max-peers", "many")
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("weightless: ") and err.count("\n") == 1


# -- one process -----------------------------------------------------------------------------


def test_an_http_announce_reaches_the_tracker_and_the_next_one_sees_the_peer(
    tmp_path: Path,
) -> None:
    w = wire(config(tmp_path), MemoryReactorClock(), store(), rand=lambda: 0.5)
    first = bdecode(Conn(w, "203.0.113.7").get(announce_path(H, port=6881)).body)
    assert first[b"peers"] == b""
    second = bdecode(Conn(w, "203.0.113.8").get(announce_path(H, port=6882)).body)
    assert compact_peers(second[b"peers"]) == [("203.0.113.7", 6881)]
    assert w.swarms.peer_count == 2


def test_udp_and_http_announces_meet_in_one_swarm(tmp_path: Path) -> None:
    w = wire(config(tmp_path), MemoryReactorClock(), store(), rand=lambda: 0.5)
    first = udp_announce(w, "198.51.100.1", 7001)
    assert isinstance(first, udp_client.AnnounceResponse) and first.peers == b""
    reply = bdecode(Conn(w, "203.0.113.9").get(announce_path(H, port=6883)).body)
    assert compact_peers(reply[b"peers"]) == [("198.51.100.1", 7001)]
    again = udp_announce(w, "198.51.100.2", 7002)
    assert sorted(udp_client.decode_peers(again.peers)) == [
        ("198.51.100.1", 7001),
        ("203.0.113.9", 6883),
    ]


def test_udp_off_wires_no_udp_tracker(tmp_path: Path) -> None:
    w = wire(config(tmp_path, udp=None), MemoryReactorClock(), store())
    assert w.udp is None and w.router is None


def test_announces_show_in_metrics(tmp_path: Path) -> None:
    w = wire(config(tmp_path), MemoryReactorClock(), store(), rand=lambda: 0.5)
    Conn(w).get(announce_path(H))
    text = Conn(w).get(b"/metrics").body.decode()
    peers = [line for line in text.splitlines() if line.startswith("tracker_active_peers")]
    assert peers == ["tracker_active_peers 1.0"]


def test_one_process_listens_on_http_and_udp(tmp_path: Path) -> None:
    reactor = MemoryReactorClock()
    c = config(tmp_path, http="tcp:9002:interface=127.0.0.1", udp_interface="127.0.0.1")
    w = wire(c, reactor, store())
    children = list(services(c, reactor, None, w))
    [http] = [s for s in children if isinstance(s, StreamServerEndpointService)]
    http.startService()
    [(port, factory, _, interface)] = reactor.tcpServers
    assert (port, interface, factory) == (9002, "127.0.0.1", w.front)
    [udp] = [s for s in children if isinstance(s, UDPService)]
    assert (udp.port_number, udp.interface, udp.protocol) == (6969, "127.0.0.1", w.udp)
    kinds = {type(s) for s in children}
    assert {CountsPublisher, ChangeFeed} <= kinds and AdoptedPorts not in kinds


def test_udp_off_listens_on_http_only(tmp_path: Path) -> None:
    reactor = MemoryReactorClock()
    c = config(tmp_path, udp=None)
    children = list(services(c, reactor, None, wire(c, reactor, store())))
    assert not any(isinstance(s, UDPService) for s in children)
    assert any(isinstance(s, StreamServerEndpointService) for s in children)


# -- one worker of several -------------------------------------------------------------------


def seat(tmp_path: Path, index: int = 0, workers: int = 2) -> Seat:
    with open(tmp_path / "ratelimit", "wb") as f:
        f.truncate(table_size())
    with open(tmp_path / "connections", "wb") as f:
        f.truncate(sharedcount.table_size(workers))
    return Seat(
        index=index,
        workers=workers,
        directory=str(tmp_path),
        http_fd=10,
        http_family=int(socket.AF_INET),
        udp_fd=11,
        udp_family=int(socket.AF_INET),
        secret=(b"k" * 32).hex(),
        supervisor=1,
    )


def owned_by(index: int, workers: int = 2) -> bytes:
    return next(h for h in (bytes([i]) * 20 for i in range(256)) if owner_of(h, workers) == index)


def test_a_worker_answers_announces_for_the_swarms_it_owns(tmp_path: Path) -> None:
    w = wire(config(tmp_path), MemoryReactorClock(), store(), seat(tmp_path), rand=lambda: 0.5)
    mine = owned_by(0)
    Conn(w, "203.0.113.7").get(announce_path(mine, port=6881))
    reply = bdecode(Conn(w, "203.0.113.8").get(announce_path(mine, port=6882)).body)
    assert compact_peers(reply[b"peers"]) == [("203.0.113.7", 6881)]


def test_a_worker_answers_a_udp_announce_another_worker_received(tmp_path: Path) -> None:
    w = wire(config(tmp_path), MemoryReactorClock(), store(), seat(tmp_path), rand=lambda: 0.5)
    assert w.udp is not None and w.router is not None
    transport = Transport()
    w.udp.transport = transport  # type: ignore[assignment]
    connection_id = w.udp.connection_ids.make(socket.inet_aton("198.51.100.1"), 0.0)
    datagram = udp_client.encode_announce_request(
        connection_id, 9, owned_by(0), b"-WL0001-000000000001", 0, 100, 0, 2, port=7001
    )
    # as the other worker's router sends it over the mesh: now, port, host, the datagram
    host = b"198.51.100.1"
    payload = struct.pack(">dHB", 0.0, 7001, len(host)) + host + datagram
    w.router.mesh.handlers[UDP_DATAGRAM](payload)
    [(reply, to)] = transport.sent
    assert to == ("198.51.100.1", 7001)
    answer = udp_client.parse_response(reply)
    assert isinstance(answer, udp_client.AnnounceResponse) and answer.transaction_id == 9
    assert w.swarms.peer_count == 1


def test_a_worker_hears_registry_writes_and_reports_its_counters(tmp_path: Path) -> None:
    w = wire(config(tmp_path), MemoryReactorClock(), store(), seat(tmp_path), rand=lambda: 0.5)
    assert w.router is not None and isinstance(w.live, ClusterLive)
    Conn(w).get(announce_path(owned_by(0)))
    v2 = "ab" * 32
    change = {"op": "upserted", "args": [v2, None, 3]}
    w.router.mesh.handlers[CATALOG](json.dumps(change).encode())
    assert v2 in w.catalog.entries
    counters = json.loads(w.router.mesh.handlers[STATS](b""))
    assert (counters["peers"], counters["swarms"]) == (1, 1)


def test_a_worker_listens_on_the_supervisors_sockets(tmp_path: Path) -> None:
    reactor = MemoryReactorClock()
    s = seat(tmp_path)
    c = config(tmp_path)
    w = wire(c, reactor, store(), s)
    children = list(services(c, reactor, s, w))
    [ports] = [p for p in children if isinstance(p, AdoptedPorts)]
    assert ports.http == (10, int(socket.AF_INET), w.front)
    assert ports.udp == (11, int(socket.AF_INET), w.udp)
    kinds = {type(p) for p in children}
    assert {Sharing, CountsPublisher, ChangeFeed} <= kinds
    assert not kinds & {UDPService, StreamServerEndpointService}
