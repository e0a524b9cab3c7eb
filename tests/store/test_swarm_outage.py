"""Redis going away and coming back, as announcers see it: a refusal in each protocol's own
form with a time to retry, one log line per outage, no traceback, and service again within
two seconds of Redis answering."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from typing import Any

import bencodepy
import pytest
import pytest_twisted
import udp_client
from redisserver import RedisServer
from twisted.internet import reactor
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import deferLater
from twisted.logger import LogLevel, globalLogPublisher

from weightless.metrics import Stats
from weightless.sharedswarms.redis import RECONNECT_DELAY, RedisSwarms, SwarmStoreUnavailable
from weightless.sharedswarms.tracker import SharedTracker
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.catalog import Catalog
from weightless.tracker.core import Policy, Tracker
from weightless.tracker.ratelimit import RateLimiter
from weightless.tracker.swarm import SwarmStore
from weightless.udp.protocol import UDPTracker
from weightless.wire.connid import ConnectionIdValidator

H = b"\x42" * 20
QUERY = b"info_hash=" + b"%42" * 20 + b"&peer_id=-XX0001-000000000001&port=6001&left=5"


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it stops and starts."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


async def wait(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_an_outage_is_refused_with_retry_in_and_served_again_within_two_seconds(
    private_redis: RedisServer,
) -> None:
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    stats = Stats()
    swarms = RedisSwarms(private_redis.url, reactor, on_outage=lambda: _count(stats))
    rng = random.Random(1)
    tracker = Tracker(
        Policy(open=True), Catalog(), SwarmStore(rng.random), PendingWrites(), None, None,
        rng.random,
    )  # fmt: skip
    shared = SharedTracker(tracker, swarms, reactor.seconds)
    udp = UDPTracker(
        tracker, RateLimiter(0, 0), stats, ConnectionIdValidator(b"k" * 32), reactor.seconds,
        None, shared,
    )  # fmt: skip
    swarms.start()
    try:
        while not swarms.reachable:
            await wait(0.02)

        async def http() -> dict[bytes, Any]:
            body = await maybeDeferred(shared.http_announce, QUERY, None, "10.0.0.1", 1000.0)
            reply: dict[bytes, Any] = bencodepy.decode(body)
            return reply

        async def udp_announce() -> udp_client.Response:
            now = reactor.seconds()
            cid = udp.connection_ids.make(bytes([10, 0, 0, 2]), now)
            data = udp_client.encode_announce_request(
                cid, 9, H, b"-UD0001-000000000002", 0, 5, 0, 0
            )
            return udp_client.parse_response(
                await maybeDeferred(udp.answer, data, "10.0.0.2", 1, now)
            )

        assert (await http())[b"incomplete"] == 1
        private_redis.stop()
        for _ in range(3):  # at once, and while it stays away
            refused = await http()
            assert refused == {b"failure reason": b"swarm store unavailable", b"retry in": 1}
            error = await udp_announce()
            assert error == udp_client.ErrorResponse(9, "swarm store unavailable")
            await wait(0.2)
        assert not swarms.reachable
        assert stats.swarm_store_unavailable == 6
        private_redis.start()
        back = time.monotonic()
        while True:
            reply = await http()
            if b"failure reason" not in reply:
                break
            assert time.monotonic() - back < 2.0, "not served again within 2 s of Redis coming back"
            await wait(0.05)
        assert reply[b"incomplete"] == 1  # a fresh Redis: the peer announces itself again
        assert isinstance(await udp_announce(), udp_client.AnnounceResponse)
        assert RECONNECT_DELAY <= 0.5
    finally:
        globalLogPublisher.removeObserver(events.append)
        await swarms.stop()
    told = [e for e in events if "swarm store" in str(e.get("log_format", ""))]
    assert [e["log_level"] for e in told] == [LogLevel.warn, LogLevel.info]  # down, back
    assert not [e for e in events if e.get("log_failure") is not None]


def _count(stats: Stats) -> None:
    stats.swarm_store_unavailable += 1


@pytest_twisted.ensureDeferred
async def test_a_redis_that_stops_answering_is_an_outage_too(private_redis: RedisServer) -> None:
    """A hung Redis (or a cut network) keeps the connection open and answers nothing: after
    two seconds without a reply the calls are refused, and served again once it answers."""
    swarms = RedisSwarms(private_redis.url, reactor)
    swarms.start()
    assert private_redis.process is not None
    pid = private_redis.process.pid
    try:
        while not swarms.reachable:
            await wait(0.02)
        await swarms.counts(H, 1000, 3600)
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(SwarmStoreUnavailable):
            await swarms.counts(H, 1000, 3600)
        assert 1.5 <= time.monotonic() - started < 4.0
        os.kill(pid, signal.SIGCONT)
        back = time.monotonic()
        while True:
            try:
                assert await swarms.counts(H, 1000, 3600) == (0, 0, 0)
                break
            except SwarmStoreUnavailable:
                assert time.monotonic() - back < 2.0
                await wait(0.05)
    finally:
        os.kill(pid, signal.SIGCONT)
        await swarms.stop()
