"""The Klein tree in memory through treq's StubTreq: tracker URLs, /health and /metrics."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import (
    RATE_LIMITED,
    Conn,
    FakeStore,
    Stack,
    announce_path,
    bdecode,
    build_stack,
    compact_peers,
    make_passkey,
    scrape_path,
)
from prometheus_client.parser import text_string_to_metric_families
from treq.testing import StubTreq
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from weightless.metrics import BUCKETS
from weightless.registry.store import StoreUnavailable
from weightless.tracker.catalog import CatalogEntry
from weightless.web.app import HEALTH_TIMEOUT

HASH = bytes(range(20))
BASE = b"http://tracker.example"

HELP_LINES = [
    "# HELP tracker_announces_total Total number of announce requests handled",
    "# HELP tracker_scrapes_total Total number of scrape requests handled",
    "# HELP tracker_active_peers Current number of active peers in memory",
    "# HELP tracker_registered_torrents Total number of torrents in registry",
    "# HELP tracker_swarms_total Total number of active swarms",
]


class Client:
    """StubTreq over a stack's Klein resource, answering synchronously."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.treq = StubTreq(stack.web.resource())

    def request(
        self, method: str, target: bytes, headers: dict[bytes, list[bytes]] | None = None
    ) -> tuple[int, Any, bytes]:
        d = self.treq.request(method, BASE + target, headers=headers)
        response = settled(d)
        body = settled(self.treq.content(response))
        return response.code, response.headers, body

    def get(self, target: bytes, forwarded_for: str | None = None) -> tuple[int, Any, bytes]:
        headers = {b"X-Forwarded-For": [forwarded_for.encode()]} if forwarded_for else None
        return self.request("GET", target, headers)

    def announce(self, target: bytes, forwarded_for: str | None = None) -> dict[bytes, Any]:
        status, headers, body = self.get(target, forwarded_for)
        assert status == 200
        assert headers.getRawHeaders(b"content-type") == [b"text/plain"]
        decoded: dict[bytes, Any] = bdecode(body)
        return decoded


def capture(d: Deferred[Any]) -> list[Any]:
    """A list that will hold the result of ``d`` (a Failure is raised by ``settled``)."""
    results: list[Any] = []
    d.addBoth(results.append)
    return results


def settled(d: Deferred[Any] | list[Any]) -> Any:
    results = capture(d) if isinstance(d, Deferred) else d
    assert results, "no answer yet"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def ok_store() -> FakeStore:
    return FakeStore(lambda: succeed(None))


@pytest.fixture
def stack() -> Stack:
    # peers come from different addresses through a trusted proxy (StubTreq's client is
    # always 127.0.0.1)
    return build_stack(ok_store(), Clock(), trusted_proxies=("127.0.0.1/32",))


@pytest.fixture
def client(stack: Stack) -> Client:
    return Client(stack)


@pytest.mark.parametrize("path", [b"/announce", b"/announce/", b"/announce/some-passkey"])
def test_announce_urls(client: Client, path: bytes) -> None:
    target = announce_path(HASH, 6881).replace(b"/announce", path, 1)
    body = client.announce(target, "198.51.100.1")
    assert body[b"interval"] == 1800
    assert body[b"incomplete"] == 1
    second = client.announce(announce_path(HASH, 6882), "198.51.100.2")
    assert compact_peers(second[b"peers"]) == [("198.51.100.1", 6881)]


def test_binary_info_hash(client: Client) -> None:
    binary = b"\xff\xfe\x00%&=+? " + b"\xff" * 11
    assert len(binary) == 20
    client.announce(announce_path(binary, 6881), "198.51.100.1")
    body = client.announce(announce_path(binary, 6882), "198.51.100.2")
    assert compact_peers(body[b"peers"]) == [("198.51.100.1", 6881)]


@pytest.mark.parametrize("path", [b"/scrape", b"/scrape/", b"/scrape/some-passkey"])
def test_scrape_urls(client: Client, path: bytes) -> None:
    client.announce(announce_path(HASH, 6881, left=0), "198.51.100.1")
    client.announce(announce_path(HASH, 6882), "198.51.100.2")
    status, _, body = client.get(scrape_path(HASH).replace(b"/scrape", path, 1))
    assert status == 200
    assert bdecode(body)[b"files"][HASH] == {b"complete": 1, b"downloaded": 0, b"incomplete": 1}


def test_bad_announce_is_a_bencoded_failure(client: Client) -> None:
    body = client.announce(announce_path(HASH, port=0))
    assert b"port" in body[b"failure reason"]


def test_passkeys_enforced_with_a_secret() -> None:
    stack = build_stack(ok_store(), Clock(), secret=b"s3cret")
    client = Client(stack)
    assert b"passkey" in client.announce(announce_path(HASH))[b"failure reason"]
    assert b"passkey" in client.announce(announce_path(HASH, passkey="bob.00"))[b"failure reason"]
    good = make_passkey("s3cret", "bob")
    body = client.announce(announce_path(HASH, passkey=good, event="started", uploaded=5))
    assert b"failure reason" not in body
    assert stack.pending.traffic == {"bob": [5, 0]}


def test_forwarded_for_ignored_from_untrusted_peer() -> None:
    stack = build_stack(ok_store(), Clock())
    client = Client(stack)
    client.announce(announce_path(HASH, 6881), "198.51.100.1")
    body = client.announce(announce_path(HASH, 6882), "198.51.100.2")
    assert compact_peers(body[b"peers"]) == [("127.0.0.1", 6881)]


def test_forwarded_for_lines_are_read_as_one_list(stack: Stack, client: Client) -> None:
    # the client forged the first line; two trusted proxies appended a line each
    client.request(
        "GET",
        announce_path(HASH, 6881),
        {b"X-Forwarded-For": [b"6.6.6.6", b"198.51.100.1", b"127.0.0.1"]},
    )
    body = client.announce(announce_path(HASH, 6882), "198.51.100.2")
    assert compact_peers(body[b"peers"]) == [("198.51.100.1", 6881)]


def test_rate_limit() -> None:
    clock = Clock()
    stack = build_stack(ok_store(), clock, rate_limit=5, rate_burst=10)
    client = Client(stack)
    for port in range(6881, 6891):
        assert b"peers" in client.announce(announce_path(HASH, port))
    assert client.announce(announce_path(HASH, 7000))[b"failure reason"] == RATE_LIMITED
    status, headers, _ = client.get(scrape_path(HASH))
    assert status == 429
    assert int(headers.getRawHeaders(b"retry-after")[0]) >= 1
    # /health and /metrics are not limited
    assert client.get(b"/health")[0] == 200
    assert client.get(b"/metrics")[0] == 200
    clock.advance(1)
    assert client.get(scrape_path(HASH))[0] == 200


def test_health_ok(client: Client) -> None:
    status, headers, body = client.get(b"/health")
    assert (status, body) == (200, b"OK")
    assert headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain")


def test_health_when_ping_fails() -> None:
    stack = build_stack(FakeStore(lambda: fail(StoreUnavailable("disk I/O error"))), Clock())
    status, _, body = Client(stack).get(b"/health")
    assert (status, body) == (503, b"Database unreachable")


def test_health_when_ping_never_answers() -> None:
    clock = Clock()
    pings: list[Deferred[None]] = []

    def hang() -> Deferred[None]:
        pings.append(Deferred())
        return pings[-1]

    stack = build_stack(FakeStore(hang), clock)
    client = Client(stack)
    answer = capture(client.treq.get(BASE + b"/health"))
    clock.advance(HEALTH_TIMEOUT - 0.1)
    client.treq.flush()
    assert not answer
    clock.advance(0.1)
    client.treq.flush()
    response = settled(answer)
    assert response.code == 503
    assert settled(client.treq.content(response)) == b"Database unreachable"
    assert pings[0].called  # the hung ping was given up, not left dangling


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics() -> None:
    ticks = iter(range(10_000))
    # every announce takes 3 ms by this timer: into the 0.005 bucket, not the 0.0025 one
    stack = build_stack(
        ok_store(),
        Clock(),
        open_tracker=False,
        trusted_proxies=("127.0.0.1/32",),
        timer=lambda: next(ticks) * 0.003,
    )
    stack.catalog.load([CatalogEntry("ab" * 32, None, 0), CatalogEntry("cd" * 20, None, 0)], [])
    registered = bytes.fromhex("ab" * 20)
    client = Client(stack)
    client.announce(announce_path(registered, 6881), "198.51.100.1")
    client.announce(announce_path(registered, 6882), "198.51.100.2")
    client.announce(announce_path(bytes.fromhex("cd" * 20), 6881), "198.51.100.1")
    client.announce(announce_path(HASH, 6881), "198.51.100.1")  # unregistered: a failure
    client.get(scrape_path(registered))

    status, headers, body = client.get(b"/metrics")
    assert status == 200
    assert headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain")
    text = body.decode()
    for line in HELP_LINES:
        assert line in text.splitlines()
    samples = metric_samples(text)
    assert samples[("tracker_announces_total", ())] == 4
    assert samples[("tracker_scrapes_total", ())] == 1
    assert samples[("tracker_active_peers", ())] == 3
    assert samples[("tracker_registered_torrents", ())] == 2
    assert samples[("tracker_swarms_total", ())] == 2

    def requests(action: str, outcome: str) -> float:
        labels = (("action", action), ("outcome", outcome), ("protocol", "http"))
        return samples.get(("tracker_requests_total", labels), 0)

    assert requests("announce", "ok") == 3
    assert requests("announce", "failure") == 1
    assert requests("scrape", "ok") == 1

    def bucket(le: str) -> float:
        return samples[("tracker_announce_duration_seconds_bucket", (("le", le),))]

    assert samples[("tracker_announce_duration_seconds_count", ())] == 4
    assert samples[("tracker_announce_duration_seconds_sum", ())] == pytest.approx(4 * 0.003)
    assert bucket("0.0025") == 0
    assert bucket("0.005") == 4
    assert bucket("+Inf") == 4
    assert len([k for k in samples if k[0] == "tracker_announce_duration_seconds_bucket"]) == (
        len(BUCKETS) + 1
    )


def test_metrics_count_rate_limited_requests() -> None:
    stack = build_stack(ok_store(), Clock(), rate_limit=1, rate_burst=1)
    client = Client(stack)
    client.announce(announce_path(HASH, 6881))
    client.announce(announce_path(HASH, 6882))
    client.get(scrape_path(HASH))
    samples = metric_samples(client.get(b"/metrics")[2].decode())
    labels = (("action", "announce"), ("outcome", "rate_limited"), ("protocol", "http"))
    assert samples[("tracker_requests_total", labels)] == 1
    labels = (("action", "scrape"), ("outcome", "rate_limited"), ("protocol", "http"))
    assert samples[("tracker_requests_total", labels)] == 1
    assert samples[("tracker_announces_total", ())] == 2


def test_klein_answers_like_the_front() -> None:
    """The same requests give the same bytes through the Klein tree and the front protocol."""
    requests = [
        announce_path(HASH, 6881, event="started"),
        announce_path(HASH, 6882, left=0),
        announce_path(HASH, 6883, compact=0),
        announce_path(HASH, 6884, numwant=1).replace(b"/announce", b"/announce/", 1),
        announce_path(HASH, 6885).replace(b"/announce", b"/announce/pk", 1),
        announce_path(HASH, port=0),
        scrape_path(HASH, b"\x01" * 20),
        scrape_path(HASH).replace(b"/scrape", b"/scrape/pk", 1),
        b"/scrape?info_hash=short",
    ]
    klein = Client(build_stack(ok_store(), Clock()))
    front = Conn(build_stack(ok_store(), Clock()), host="127.0.0.1")
    for target in requests:
        status, _, body = klein.get(target)
        reply = front.get(target)
        assert (status, body) == (reply.status, reply.body), target


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", [b"/announce", b"/scrape", b"/health", b"/metrics", b"/"])
def test_a_method_no_route_takes_is_a_plain_405_with_allow(
    client: Client, method: str, path: bytes
) -> None:
    status, headers, body = client.request(method, path)
    assert status == 405
    assert headers.getRawHeaders(b"content-type") == [b"text/plain; charset=utf-8"]
    assert b"GET" in headers.getRawHeaders(b"allow")[0]
    assert body == b"Method not allowed"


@pytest.mark.parametrize(
    "path", [b"/torrents/%ff%fe", b"/announce/%c3%28", b"/%ed%a0%80/announce", b"/x/%80"]
)
def test_a_path_that_is_not_utf8_is_a_plain_400(client: Client, path: bytes) -> None:
    status, headers, body = client.get(path)
    assert (status, body) == (400, b"The URL is not UTF-8")
    assert headers.getRawHeaders(b"content-type") == [b"text/plain; charset=utf-8"]


@pytest.mark.parametrize("path", [b"/api/%ff", b"/api/registry/%c3%28"])
def test_an_api_path_that_is_not_utf8_is_a_json_400(client: Client, path: bytes) -> None:
    status, headers, body = client.get(path)
    assert (status, body) == (400, b'{"error": "the URL is not UTF-8"}')
    assert headers.getRawHeaders(b"content-type") == [b"application/json"]
