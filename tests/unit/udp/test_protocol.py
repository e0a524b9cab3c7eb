"""The UDP adapter in memory: a fake transport, the real tracker, an injected clock."""

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bencodepy
import pytest
import udp_client
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from udp_harness import H, Harness

from weightless.tracker.catalog import CatalogEntry
from weightless.tracker.core import Policy
from weightless.wire import udp

SECRET = b"s3cret"


def test_udp_announce_returns_other_peers() -> None:
    h = Harness()
    first = h.announce(("10.0.0.1", 6881))
    assert first == udp_client.AnnounceResponse(42, 1800, 1, 0, b"")
    second = h.announce(("10.0.0.2", 6882), left=0)
    assert (second.leechers, second.seeders) == (1, 1)
    assert udp_client.decode_peers(second.peers) == [("10.0.0.1", 6881)]
    assert h.stats.total("announce") == 2


def test_ipv4_mapped_sources_are_ipv4_peers_and_ipv6_gets_18_byte_peers() -> None:
    h = Harness()
    h.announce(("::ffff:10.0.0.1", 6881))
    reply = h.announce(("10.0.0.2", 6882))
    assert udp_client.decode_peers(reply.peers) == [("10.0.0.1", 6881)]
    h.announce(("2001:db8::1", 7000))
    reply = h.announce(("2001:db8::2", 7001))
    assert udp_client.decode_peers(reply.peers, ipv6=True) == [("2001:db8::1", 7000)]
    assert (reply.seeders, reply.leechers) == (0, 4)


def test_the_ip_field_of_the_request_is_never_trusted() -> None:
    h = Harness()
    h.announce(("10.0.0.1", 6881), ip=0x01020304)
    reply = h.announce(("10.0.0.2", 6882))
    assert udp_client.decode_peers(reply.peers) == [("10.0.0.1", 6881)]


def test_udp_and_http_share_swarms() -> None:
    h = Harness()
    h.announce(("10.0.0.1", 6881))
    body = h.tracker.http_announce(
        b"info_hash=" + b"%ab" * 20 + b"&peer_id=-XX0001-000000000002&port=2&left=5",
        None,
        "10.0.0.9",
        h.now,
    )
    assert b"5:peers6:\x0a\x00\x00\x01\x1a\xe1" in body


def test_replies_stay_under_1500_bytes() -> None:
    h = Harness()
    h.tracker.policy = Policy(open=True, max_peers=1000)
    for i in range(400):
        h.announce((f"10.0.{i // 250}.{i % 250}", 1000 + i), left=0)
    reply = h.announce(("10.9.9.9", 9999), num_want=1000)
    assert len(reply.peers) // 6 == udp.MAX_REPLY_PEERS_V4
    assert 20 + len(reply.peers) <= 1472


def test_unknown_or_expired_connection_id_gets_an_error_not_a_reply() -> None:
    h = Harness()
    addr = ("10.0.0.1", 6881)
    cid = h.connect(addr)
    assert isinstance(h.announce(addr, cid=cid + 1), udp_client.ErrorResponse)
    assert isinstance(
        h.announce(("10.0.0.2", 6881), cid=cid), udp_client.ErrorResponse
    )  # another host
    h.now += 121
    assert isinstance(h.announce(addr, cid=cid), udp_client.ErrorResponse)
    assert h.tracker.swarms.peer_count == 0


def test_scrape_in_request_order_and_blocked_reads_empty() -> None:
    h = Harness()
    h.announce(("10.0.0.1", 6881))
    h.announce(("10.0.0.1", 6881), left=0, event=1)
    h.tracker.catalog.block([(b"\x01" * 20).hex()])
    addr = ("10.0.0.5", 5)
    reply = h.send(udp_client.encode_scrape_request(h.connect(addr), 3, [b"\x01" * 20, H]), addr)
    assert reply == udp_client.ScrapeResponse(3, [(0, 0, 0), (1, 1, 0)])


def test_listed_mode_and_blocked_hashes_get_errors() -> None:
    h = Harness(open_=False)
    reply = h.announce(("10.0.0.1", 6881))
    assert isinstance(reply, udp_client.ErrorResponse) and "unregistered" in reply.message
    v2 = hashlib.sha256(b"t").hexdigest()
    h.tracker.catalog.add(CatalogEntry(v2, None, 0))
    assert isinstance(
        h.announce(("10.0.0.1", 6881), bytes.fromhex(v2)[:20]), udp_client.AnnounceResponse
    )
    h.tracker.catalog.block([v2])
    reply = h.announce(("10.0.0.1", 6881), bytes.fromhex(v2)[:20])
    assert isinstance(reply, udp_client.ErrorResponse) and "blocked" in reply.message


def passkey(user: str) -> bytes:
    return f"{user}.{hmac.new(SECRET, user.encode(), hashlib.sha256).hexdigest()}".encode()


def test_bep41_passkey_in_url_data() -> None:
    h = Harness(secret=SECRET)
    addr = ("10.0.0.1", 6881)
    reply = h.announce(addr)
    assert isinstance(reply, udp_client.ErrorResponse) and "passkey" in reply.message
    reply = h.announce(addr, url_data=b"/announce/bob." + b"0" * 64)
    assert isinstance(reply, udp_client.ErrorResponse) and reply.message == "invalid passkey"
    key = passkey("bob")
    assert isinstance(h.announce(addr, url_data=b"/announce/" + key), udp_client.AnnounceResponse)
    h.announce(addr, url_data=b"/announce/" + key + b"?x=1", uploaded=500, downloaded=700)
    assert h.tracker.pending.traffic == {"bob": [500, 700]}


def test_rate_limit_applies_to_udp_announces() -> None:
    h = Harness(rate=1)
    addr = ("10.0.0.1", 6881)
    cid = h.connect(addr)
    replies = [h.announce(addr, cid=cid) for _ in range(11)]
    assert all(isinstance(r, udp_client.AnnounceResponse) for r in replies[:10])
    assert replies[10] == udp_client.ErrorResponse(42, "Rate limit exceeded. Please slow down.")


def test_malformed_without_valid_connection_id_is_dropped() -> None:
    h = Harness()
    assert h.send(b"\x00" * 10, ("10.0.0.1", 1)) is None
    assert h.send(b"\x00" * 8 + b"\x00\x00\x00\x09" + b"\x00" * 4, ("10.0.0.1", 1)) is None


def test_malformed_with_valid_connection_id_gets_an_error() -> None:
    h = Harness()
    addr = ("10.0.0.1", 6881)
    cid = h.connect(addr)
    data = cid.to_bytes(8, "big") + b"\x00\x00\x00\x09" + b"\x00\x00\x00\x07"
    reply = h.send(data, addr)
    assert reply == udp_client.ErrorResponse(7, "unknown action")


@contextmanager
def no_logged_failures() -> Iterator[None]:
    """Fail on any failure the adapter logs: it catches every exception (one bad datagram
    must not stop the others), so "did not raise" alone proves nothing."""
    failures: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        failure = event.get("log_failure")
        level = event.get("log_level")
        if failure is not None:
            failures.append(failure.getTraceback())
        elif level is not None and level >= LogLevel.error:
            failures.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        yield
    finally:
        globalLogPublisher.removeObserver(observe)
    assert not failures, "\n".join(failures)


def test_no_logged_failures_catches_an_adapter_failure() -> None:
    """The check above sees what the adapter swallows."""
    h = Harness()
    h.tracker.announce = None  # type: ignore[assignment,method-assign]
    with pytest.raises(AssertionError, match="not callable"), no_logged_failures():
        h.announce(("10.0.0.1", 6881))


announce_bodies = st.builds(
    lambda ih, dl, left, up, ev, num, port, url: udp_client.encode_announce_request(
        0, 7, ih, b"-XX0001-000000000001", dl, left, up, ev, 0, 0, num, port, url
    )[16:],
    st.binary(min_size=20, max_size=20),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(0, 65535),
    st.one_of(
        st.just(b""),
        st.binary(max_size=300),
        st.sampled_from([b"/announce", b"/announce/", b"/scrape", b"/announce/x.y", b"?a=b"]),
    ),
)


@settings(max_examples=500, deadline=None)
@given(
    data=st.one_of(st.binary(max_size=300), announce_bodies),
    action=st.integers(0, 4),
    valid=st.booleans(),
    secret=st.sampled_from([None, b"s3cret"]),
    open_=st.booleans(),
)
def test_random_datagrams_never_fail_or_amplify(
    data: bytes, action: int, valid: bool, secret: bytes | None, open_: bool
) -> None:
    h = Harness(open_=open_, secret=secret)
    addr = ("10.0.0.1", 6881)
    head = (h.connect(addr) if valid else 12345).to_bytes(8, "big") + action.to_bytes(4, "big")
    with no_logged_failures():
        for packet in (data, head + data):
            h.transport.sent.clear()
            h.proto.datagramReceived(packet, addr)
            for reply, _ in h.transport.sent:
                if not valid:
                    assert len(reply) <= max(len(packet), 16)


def test_bad_connection_id_error_is_no_bigger_than_the_smallest_request() -> None:
    h = Harness()
    addr = ("10.0.0.1", 6881)
    scrape = udp_client.encode_scrape_request(999, 1, [H])
    h.send(scrape, addr)
    assert len(h.transport.sent[0][0]) <= len(scrape)


def test_stopped_removes_the_peer() -> None:
    h = Harness()
    h.announce(("10.0.0.1", 6881))
    reply = h.announce(("10.0.0.1", 6881), event=udp.EVENT_STOPPED)
    assert (reply.leechers, reply.peers) == (0, b"")


def test_a_connection_id_is_good_for_every_port_of_its_ip() -> None:
    """libtorrent shares one connection id between all its sessions (ports) on an IP."""
    h = Harness()
    cid = h.connect(("10.0.0.1", 6881))
    assert isinstance(h.announce(("10.0.0.1", 7000), cid=cid), udp_client.AnnounceResponse)


def test_bep41_passkey_first_url_data() -> None:
    h = Harness(secret=SECRET)
    addr = ("10.0.0.1", 6881)
    key = passkey("bob")
    h.announce(addr, url_data=b"/" + key + b"/announce")
    h.announce(addr, url_data=b"/" + key + b"/announce", uploaded=500, downloaded=700)
    assert h.tracker.pending.traffic == {"bob": [500, 700]}
    reply = h.announce(addr, url_data=b"/bob." + b"0" * 64 + b"/announce")
    assert isinstance(reply, udp_client.ErrorResponse) and reply.message == "invalid passkey"
    reply = h.announce(addr, url_data=b"/" + key + b"/scrape")
    assert isinstance(reply, udp_client.ErrorResponse) and "announce" in reply.message


HYBRID_V2 = hashlib.sha256(b"udp hybrid").hexdigest()
HYBRID_V1 = hashlib.sha1(b"udp hybrid").hexdigest()


def test_hybrid_peer_lists_follow_the_hash_over_udp_and_http() -> None:
    h = Harness(open_=False)
    entry = CatalogEntry(HYBRID_V2, HYBRID_V1, 0)
    h.tracker.catalog.add(entry)
    v1, v2 = bytes.fromhex(HYBRID_V1), bytes.fromhex(HYBRID_V2)[:20]
    h.announce(("10.0.0.1", 6881), v1)  # a v1-only client
    h.announce(("10.0.0.2", 6882), v2)  # libtorrent, under both hashes
    reply = h.announce(("10.0.0.2", 6882), v1)
    assert udp_client.decode_peers(reply.peers) == [("10.0.0.1", 6881)]
    assert (reply.seeders, reply.leechers) == (0, 2)
    reply = h.announce(("10.0.0.3", 6883), v2, left=0)
    assert udp_client.decode_peers(reply.peers) == [("10.0.0.2", 6882)]
    assert (reply.seeders, reply.leechers) == (1, 2)
    # the same lists over HTTP (the full 32-byte v2 hash included)
    body = h.tracker.http_announce(
        b"info_hash="
        + b"".join(b"%%%02x" % c for c in bytes.fromhex(HYBRID_V2))
        + b"&peer_id=-XX0001-000000000004&port=6884&left=5",
        None,
        "10.0.0.4",
        h.now,
    )
    peers = bencodepy.decode(body)[b"peers"]
    assert sorted(udp_client.decode_peers(peers)) == [("10.0.0.2", 6882), ("10.0.0.3", 6883)]
    scraped = h.send(
        udp_client.encode_scrape_request(h.connect(("10.0.0.9", 1)), 7, [v1, v2]), ("10.0.0.9", 1)
    )
    assert scraped.stats == [(1, 0, 3), (1, 0, 3)]


def test_udp_seeder_gets_seeders_when_there_are_no_leechers() -> None:
    h = Harness()
    h.announce(("10.0.0.1", 6881), left=0)
    reply = h.announce(("10.0.0.2", 6882), left=0)
    assert udp_client.decode_peers(reply.peers) == [("10.0.0.1", 6881)]
    h.announce(("10.0.0.3", 6883))
    reply = h.announce(("10.0.0.2", 6882), left=0, num_want=1)
    assert udp_client.decode_peers(reply.peers) == [("10.0.0.3", 6883)]


def test_udp_completions_without_the_event_once_never_for_a_seeder() -> None:
    h = Harness()
    leecher, seeder = ("10.0.0.1", 6881), ("10.0.0.2", 6882)
    h.announce(seeder, left=0, event=udp.EVENT_STARTED)
    h.announce(seeder, left=0, event=udp.EVENT_COMPLETED)  # a seeder from the start
    h.announce(leecher, event=udp.EVENT_STARTED)
    h.announce(leecher, left=0)  # finished, without the event
    h.announce(leecher, left=0, event=udp.EVENT_COMPLETED)  # late: not again
    h.announce(leecher, left=0, event=udp.EVENT_STOPPED)
    assert h.tracker.scrape_one(H) == (1, 1, 0)
    other = ("10.0.0.3", 6883)
    h.announce(other)
    h.announce(other, left=0, event=udp.EVENT_STOPPED)  # finished in its stopped announce
    assert h.tracker.scrape_one(H) == (1, 2, 0)
