"""Fuzz harness: the BEP 15 codec (weightless.wire.udp) and the UDP adapter behind it, in memory.

A datagram is parsed (any exception but UdpParseError is a crash), and answered by a real
UDPTracker (open mode, passkeys on) with and without a valid connection id in front: an
exception from ``answer``, a counter that is negative, or a reply larger than the request to
an unproven source is a crash. Run it alone with
``python tests/fuzz/fuzz_udp.py tests/fuzz/corpus/udp``."""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

with atheris.instrument_imports():
    import random

    from weightless.metrics import Stats
    from weightless.netaddr import pack_ip
    from weightless.tracker.accounting import Accounting, PendingWrites
    from weightless.tracker.catalog import Catalog
    from weightless.tracker.core import Policy, Tracker
    from weightless.tracker.ratelimit import RateLimiter
    from weightless.tracker.swarm import SwarmStore
    from weightless.udp.protocol import UDPTracker
    from weightless.wire import udp
    from weightless.wire.connid import ConnectionIdValidator
    from weightless.wire.passkey import Passkeys

HOST = "10.0.0.1"
NOW = 1_000_000.0


def _tracker(secret: bytes | None) -> UDPTracker:
    rng = random.Random(1)
    pending = PendingWrites()
    tracker = Tracker(
        Policy(open=True, max_swarms=1000),
        Catalog(),
        SwarmStore(rng.random),
        pending,
        Passkeys(secret) if secret else None,
        Accounting(pending, 3600) if secret else None,
        rng.random,
    )
    ids = ConnectionIdValidator(b"k" * 32)
    return UDPTracker(tracker, RateLimiter(0, 10), Stats(), ids, lambda: NOW)


PLAIN, KEYED = _tracker(None), _tracker(b"secret")
CID = PLAIN.connection_ids.make(pack_ip(HOST), NOW)


def _check_parse(data: bytes) -> None:
    try:
        request = udp.parse_request(data)
    except udp.UdpParseError:
        return
    if isinstance(request, udp.AnnounceRequest):
        if min(request.downloaded, request.left, request.uploaded) < 0:
            raise AssertionError(f"a negative counter passed the codec: {request}")
        if len(request.info_hash) != 20 or len(request.peer_id) != 20:
            raise AssertionError("hash or peer id of the wrong size")
        if not 0 <= request.event <= 3:
            raise AssertionError(f"event {request.event} out of range")
    elif isinstance(request, udp.ScrapeRequest) and not (
        1 <= len(request.info_hashes) <= udp.MAX_SCRAPE_HASHES
    ):
        raise AssertionError("scrape hash count out of range")


def TestOneInput(data: bytes) -> None:
    _check_parse(data)
    proven = CID.to_bytes(8, "big") + data[8:] if len(data) >= 8 else data
    for adapter in (PLAIN, KEYED):
        for packet, trusted in ((data, False), (proven, True)):
            reply = adapter.answer(packet, HOST, 6881, NOW)  # raises: a crash
            unproven = not trusted and packet[:8] != proven[:8]
            if unproven and isinstance(reply, bytes) and len(reply) > max(len(packet), 16):
                raise AssertionError("an unproven source got a larger reply")
        swarms = adapter.tracker.swarms.swarms
        if len(swarms) > 500:
            swarms.clear()
            adapter.tracker.swarms.peer_count = 0


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
