"""The UDP adapter in memory, for tests: the real tracker behind ``UDPTracker``, a transport that
keeps what was sent, a clock the test sets (``now``) and the request codecs of udp_client."""

from __future__ import annotations

import random
from typing import Any

import udp_client

from weightless.metrics import Stats
from weightless.tracker.accounting import Accounting, PendingWrites
from weightless.tracker.catalog import Catalog
from weightless.tracker.core import Policy, Tracker
from weightless.tracker.ratelimit import RateLimiter
from weightless.tracker.swarm import SwarmStore
from weightless.udp.protocol import UDPTracker
from weightless.wire.connid import ConnectionIdValidator
from weightless.wire.passkey import Passkeys

H = b"\xab" * 20


class FakeTransport:
    """Keeps each datagram written, with its address."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def write(self, data: bytes, addr: Any) -> None:
        self.sent.append((data, addr))


class Harness:
    """One UDP tracker (open unless told, passkeys with ``secret``, ``rate`` requests a second
    a source) answering datagrams in memory."""

    def __init__(self, open_: bool = True, secret: bytes | None = None, rate: float = 0) -> None:
        rng = random.Random(1)
        self.now = 1000.0
        pending = PendingWrites()
        self.tracker = Tracker(
            Policy(open=open_, max_peers=50),
            Catalog(),
            SwarmStore(rng.random),
            pending,
            Passkeys(secret) if secret else None,
            Accounting(pending, 3600) if secret else None,
            rng.random,
        )
        self.stats = Stats()
        self.proto = UDPTracker(
            self.tracker,
            RateLimiter(rate, 10),
            self.stats,
            ConnectionIdValidator(b"k" * 32, max_age=120),
            lambda: self.now,
        )
        self.transport = FakeTransport()
        self.proto.transport = self.transport  # type: ignore[assignment]

    def send(self, data: bytes, addr: tuple[str, int]) -> Any:
        self.transport.sent.clear()
        self.proto.datagramReceived(data, addr)
        if not self.transport.sent:
            return None
        reply, to = self.transport.sent[0]
        assert to == addr
        return udp_client.parse_response(reply)

    def connect(self, addr: tuple[str, int]) -> int:
        reply = self.send(udp_client.encode_connect_request(1), addr)
        assert isinstance(reply, udp_client.ConnectResponse)
        return reply.connection_id

    def announce(self, addr: tuple[str, int], info_hash: bytes = H, **kw: Any) -> Any:
        cid = kw.pop("cid", None) or self.connect(addr)
        fields: dict[str, Any] = {
            "downloaded": 0,
            "left": 100,
            "uploaded": 0,
            "event": 0,
            "port": addr[1],
        }
        fields.update(kw)
        data = udp_client.encode_announce_request(
            cid, 42, info_hash, b"-XX0001-%012d" % addr[1], **fields
        )
        return self.send(data, addr)
