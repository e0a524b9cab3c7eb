"""Issue 8, item 1 at the codecs: uploaded, downloaded and left are non-negative 64-bit numbers.
Above 2^63-1 they are taken as 2^63-1 (never refused, never a float); a negative one is a
failure reason (HTTP) or a BEP 15 error (UDP)."""

from __future__ import annotations

import pytest
import udp_client
from helpers import announce_query, bdecode, make_passkey

from unit.udp.test_protocol import Harness
from weightless.tracker.accounting import Accounting, PendingWrites
from weightless.tracker.catalog import Catalog
from weightless.tracker.core import Policy, Tracker
from weightless.tracker.swarm import SwarmStore
from weightless.wire import udp
from weightless.wire.passkey import Passkeys
from weightless.wire.query import MAX_COUNTER, QueryError, parse_announce

MAX = (1 << 63) - 1
H = b"\x11" * 20
COUNTERS = ["uploaded", "downloaded", "left"]

HUGE = [
    ("99999999999999999999", MAX),  # the 20 digits
    (str(MAX), MAX),
    (str(MAX + 1), MAX),
    (str(1 << 64), MAX),
    ("1" * 300, MAX),
    ("9" * 3000, MAX),  # thousands of digits: no int() of them, no 4300-digit limit
    ("9" * 5000, MAX),  # the soak's 5,000 digits: the query is not refused for its length
    ("0" * 40 + "12", 12),  # leading zeros are not a big number
    ("0" * 40, 0),
    ("%39" * 25, MAX),  # digits written as %XX
    ("9223372036854775806", MAX - 1),
]
NEGATIVE_OR_MALFORMED = ["-1", "-0", "%2D5", "+5", " 5", "5 ", "1e3", "1.0", "0x10", "", "١٢"]


def test_max_counter_is_the_int64_limit() -> None:
    assert MAX_COUNTER == MAX


@pytest.mark.parametrize("name", COUNTERS)
@pytest.mark.parametrize(("value", "expected"), HUGE)
def test_http_counters_above_the_limit_saturate(name: str, value: str, expected: int) -> None:
    raw = announce_query(H, **{name: "X"}).replace(f"{name}=X".encode(), f"{name}={value}".encode())
    parsed = parse_announce(raw)
    assert getattr(parsed, name) == expected
    assert type(getattr(parsed, name)) is int


@pytest.mark.parametrize("name", COUNTERS)
@pytest.mark.parametrize("value", NEGATIVE_OR_MALFORMED)
def test_http_negative_or_malformed_counters_are_refused(name: str, value: str) -> None:
    raw = announce_query(H, **{name: "X"}).replace(f"{name}=X".encode(), f"{name}={value}".encode())
    with pytest.raises(QueryError, match=f"invalid {name}"):
        parse_announce(raw)


def passkey_tracker() -> tuple[Tracker, PendingWrites]:
    pending = PendingWrites()
    tracker = Tracker(
        Policy(open=True),
        Catalog(),
        SwarmStore(lambda: 0.5),
        pending,
        Passkeys(b"secret"),
        Accounting(pending, 3600),
        lambda: 0.5,
    )
    return tracker, pending


def test_http_passkey_announce_with_20_digits_accounts_the_limit() -> None:
    tracker, pending = passkey_tracker()
    passkey = make_passkey("secret", "alice").encode()
    q = announce_query(H, uploaded="99999999999999999999", downloaded=str(10**40), event="started")
    reply = bdecode(tracker.http_announce(q, passkey, "10.0.0.1", 1.0))
    assert b"failure reason" not in reply
    q = announce_query(H, uploaded="5", downloaded="7")  # a restart: counts from zero
    bdecode(tracker.http_announce(q, passkey, "10.0.0.1", 2.0))
    assert pending.traffic == {"alice": [MAX, MAX]}


def test_http_negative_counter_is_a_failure_reason_and_changes_nothing() -> None:
    tracker, pending = passkey_tracker()
    passkey = make_passkey("secret", "alice").encode()
    for name in COUNTERS:
        q = announce_query(H, **{name: "-5"})
        reply = bdecode(tracker.http_announce(q, passkey, "10.0.0.1", 1.0))
        reason = f"invalid {name}: expected a non-negative integer"
        assert reply[b"failure reason"] == reason.encode()
    assert not pending and tracker.swarms.peer_count == 0


def udp_announce(**counters: int) -> bytes:
    fields = {"downloaded": 0, "left": 0, "uploaded": 0, **counters}
    return udp_client.encode_announce_request(
        7,
        9,
        H,
        b"-XX0001-000000000001",
        event=0,
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("name", COUNTERS)
@pytest.mark.parametrize("value", [-1, -(1 << 63), -12345])
def test_udp_codec_refuses_negative_counters(name: str, value: int) -> None:
    with pytest.raises(udp.UdpParseError, match="invalid counter") as e:
        udp.parse_request(udp_announce(**{name: value}))
    assert (e.value.transaction_id, e.value.connection_id) == (9, 7)  # so it can be answered


@pytest.mark.parametrize("name", COUNTERS)
@pytest.mark.parametrize("value", [0, 1, MAX])
def test_udp_codec_takes_counters_up_to_the_limit(name: str, value: int) -> None:
    request = udp.parse_request(udp_announce(**{name: value}))
    assert isinstance(request, udp.AnnounceRequest)
    assert getattr(request, name) == value


@pytest.mark.parametrize("name", COUNTERS)
def test_udp_negative_counter_gets_a_bep15_error(name: str) -> None:
    h = Harness()
    reply = h.announce(("10.0.0.1", 6881), **{name: -1})
    assert isinstance(reply, udp_client.ErrorResponse)
    assert "non-negative" in reply.message
    assert h.tracker.swarms.peer_count == 0


def test_udp_counter_at_the_limit_then_smaller_stays_an_integer() -> None:
    """The issue's UDP case: uploaded 2^63-1, then a smaller total (the client restarted)."""
    secret = b"s3cret"
    h = Harness(secret=secret)
    url = b"/announce/" + make_passkey(secret.decode(), "alice").encode()
    addr = ("10.0.0.1", 6881)
    assert isinstance(
        h.announce(addr, uploaded=MAX, event=2, url_data=url), udp_client.AnnounceResponse
    )
    assert isinstance(h.announce(addr, uploaded=10, url_data=url), udp_client.AnnounceResponse)
    assert h.tracker.pending.traffic == {"alice": [MAX, 0]}
    assert type(h.tracker.pending.traffic["alice"][0]) is int
