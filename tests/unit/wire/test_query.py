import re
from urllib.parse import quote_from_bytes, unquote_to_bytes

import pytest
import udp_client
from helpers import announce_query, bdecode, make_passkey
from hypothesis import given
from hypothesis import strategies as st
from udp_harness import Harness

from weightless.tracker.accounting import Accounting, PendingWrites
from weightless.tracker.catalog import Catalog
from weightless.tracker.core import Policy, Tracker
from weightless.tracker.swarm import SwarmStore
from weightless.wire import udp
from weightless.wire.passkey import Passkeys
from weightless.wire.query import (
    EVENT_COMPLETED,
    EVENT_NONE,
    EVENT_PAUSED,
    EVENT_STARTED,
    EVENT_STOPPED,
    INT64_MAX,
    MAX_QUERY,
    MAX_SCRAPE_HASHES,
    QueryError,
    _unquote,
    parse_announce,
    parse_scrape,
)

HASH = bytes(range(236, 256))  # bytes above 0x7f: %ec..%ff on the wire
PEER = b"-qB4650-abcdefghijkl"


def query(**fields: object) -> bytes:
    base: dict[str, object] = {"info_hash": HASH, "peer_id": PEER, "port": 6881}
    base.update(fields)
    parts = []
    for key, value in base.items():
        if value is None:
            continue
        raw = value if isinstance(value, bytes) else str(value).encode()
        parts.append(f"{key}={quote_from_bytes(raw)}")
    return "&".join(parts).encode()


def test_binary_hash_and_peer_id_are_bytes() -> None:
    a = parse_announce(query(uploaded=1, downloaded=2, left=3))
    assert a.info_hash == HASH
    assert a.peer_id == PEER
    assert (a.port, a.uploaded, a.downloaded, a.left) == (6881, 1, 2, 3)
    assert a.compact and not a.no_peer_id
    assert a.numwant is None and a.event == EVENT_NONE


def test_plus_is_a_space_and_raw_bytes_pass() -> None:
    raw = b"info_hash=" + b"a" * 19 + b"+&peer_id=" + PEER + b"&port=1"
    assert parse_announce(raw).info_hash == b"a" * 19 + b" "


def test_v2_hash_of_32_bytes_is_truncated() -> None:
    full = bytes(range(32))
    assert parse_announce(query(info_hash=full)).info_hash == full[:20]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"info_hash": b"short"}, "invalid info_hash"),
        ({"info_hash": None}, "missing info_hash"),
        ({"peer_id": b"x"}, "invalid peer_id"),
        ({"port": None}, "missing port"),
        ({"port": 0}, "invalid port"),
        ({"port": 70000}, "invalid port"),
        ({"port": "abc"}, "invalid port"),
        ({"uploaded": "-1"}, "invalid uploaded"),
        ({"downloaded": "1e5"}, "invalid downloaded"),
        ({"left": "x"}, "invalid left"),
        ({"numwant": "lots"}, "invalid numwant"),
        ({"event": "exploded"}, "invalid event"),
    ],
)
def test_bad_input_is_refused_with_a_reason(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(QueryError, match=reason):
        parse_announce(query(**fields))


def test_oversized_query() -> None:
    with pytest.raises(QueryError, match="too long"):
        parse_announce(query(key="k" * MAX_QUERY))


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ("started", EVENT_STARTED),
        ("completed", EVENT_COMPLETED),
        ("stopped", EVENT_STOPPED),
        ("paused", EVENT_PAUSED),
        ("", EVENT_NONE),
    ],
)
def test_events(event: str, code: int) -> None:
    assert parse_announce(query(event=event)).event == code


def test_compact_numwant_and_no_peer_id() -> None:
    a = parse_announce(query(compact=0, no_peer_id=1, numwant=7))
    assert (a.compact, a.no_peer_id, a.numwant) == (False, True, 7)
    assert parse_announce(query(numwant=-1)).numwant is None


def test_missing_left_is_unknown_not_zero() -> None:
    assert parse_announce(query()).left is None


def test_scrape_hashes_in_order_without_repeats() -> None:
    other = b"\x01" * 20
    raw = b"&".join(b"info_hash=" + quote_from_bytes(h).encode() for h in (HASH, other, HASH))
    assert parse_scrape(raw) == [HASH, other]


def test_scrape_refuses_bad_and_missing_hashes() -> None:
    with pytest.raises(QueryError, match="at least one"):
        parse_scrape(b"")
    with pytest.raises(QueryError, match="invalid info_hash"):
        parse_scrape(b"info_hash=abc")
    many = b"&".join(b"info_hash=" + b"%02d" % i + b"x" * 18 for i in range(MAX_SCRAPE_HASHES + 1))
    with pytest.raises(QueryError, match="too many"):
        parse_scrape(many)


@pytest.mark.parametrize(
    "raw",
    [
        b"%ff%FE%0a",
        b"a%3Db=c",
        b"x+y%20",
        b"trailing%20%20",
        b"%09tab",
        b"ab",
        b"%25%2B+",
        b";%3B",
        b"=%41",
    ],
)
def test_unquote_matches_the_standard_library(raw: bytes) -> None:
    assert _unquote(raw) == unquote_to_bytes(raw.replace(b"+", b" "))


MALFORMED = [
    b"%",
    b"abc%",
    b"abc%2",
    b"%zz1",
    b"%2g",
    b"%g2",
    b"% 2",
    b"%%41",
    b"%4",
    b"x%\n",
    b"x%\r\n",
    b"%0",
    b"%-1",
    b"%+1",
    b"%41%",
    b"%41%4",
    b"%41%x1",
    b"%=41",
    b"%\xff\xff",
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_percent_escapes_are_refused(raw: bytes) -> None:
    with pytest.raises(QueryError, match="percent-encoding"):
        _unquote(raw)


@pytest.mark.parametrize("tail", [b"%", b"%4", b"%zz", b"%4G"])
def test_a_hash_with_a_malformed_escape_is_not_an_info_hash(tail: bytes) -> None:
    """20 good bytes then a stray %: never a 20-byte hash with the % dropped or kept."""
    raw = query(info_hash=None) + b"&info_hash=" + quote_from_bytes(HASH).encode() + tail
    with pytest.raises(QueryError, match="percent-encoding"):
        parse_announce(raw)
    with pytest.raises(QueryError, match="percent-encoding"):
        parse_scrape(b"info_hash=" + quote_from_bytes(HASH).encode() + tail)


def test_every_byte_round_trips() -> None:
    every = bytes(range(256))
    assert _unquote(quote_from_bytes(every).encode()) == every
    upper = "".join(f"%{b:02X}" for b in every).encode()
    lower = "".join(f"%{b:02x}" for b in every).encode()
    assert _unquote(upper) == every
    assert _unquote(lower) == every


@given(st.binary(max_size=60))
def test_unquote_is_strict_percent_decoding(raw: bytes) -> None:
    """The fast decoder agrees with the definition on any bytes: a malformed escape is an
    error, anything else decodes as unquote_to_bytes does (with + as a space)."""
    if re.search(rb"%(?![0-9A-Fa-f]{2})", raw):
        with pytest.raises(QueryError):
            _unquote(raw)
    else:
        assert _unquote(raw) == unquote_to_bytes(raw.replace(b"+", b" "))


@given(st.lists(st.sampled_from([b"%", b"=", b"4", b"1", b"f", b"g", b"\n", b"\r", b" ", b"+"])))
def test_unquote_is_strict_on_escape_like_bytes(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    if re.search(rb"%(?![0-9A-Fa-f]{2})", raw):
        with pytest.raises(QueryError):
            _unquote(raw)
    else:
        assert _unquote(raw) == unquote_to_bytes(raw.replace(b"+", b" "))


def test_semicolon_is_an_ordinary_character() -> None:
    """Fields split on & only: a ; is part of the value (WHATWG URL), never a separator."""
    with pytest.raises(QueryError, match="invalid port"):
        parse_announce(query().replace(b"port=6881", b"port=6881;numwant=5"))
    with pytest.raises(QueryError, match="invalid numwant"):
        parse_announce(query() + b"&numwant=5;port=1")
    assert parse_announce(query() + b"&x=1;numwant=5").numwant is None
    with_semicolon = b"a;b=c;" + b"x" * 14  # a raw 20-byte hash holding ; and =
    assert len(with_semicolon) == 20
    raw = query(info_hash=None) + b"&info_hash=" + quote_from_bytes(with_semicolon).encode()
    assert parse_announce(raw).info_hash == with_semicolon
    assert parse_scrape(b"info_hash=" + with_semicolon.replace(b"=", b"%3D")) == [with_semicolon]


@pytest.mark.parametrize("count", [58, 60, 63, 64])
@pytest.mark.parametrize("size", [20, 32])
def test_scrape_of_many_hashes_written_fully_as_percent_escapes(count: int, size: int) -> None:
    """Clients (libtorrent among them) may escape every byte: 64 such hashes are a legitimate
    scrape, not a request too long."""
    hashes = [bytes([i]) * size for i in range(count)]
    raw = b"&".join(b"info_hash=" + "".join(f"%{b:02X}" for b in h).encode() for h in hashes)
    assert len(raw) > 4096
    assert parse_scrape(raw) == hashes


def test_scrape_of_65_distinct_hashes_is_refused_but_repeats_do_not_count() -> None:
    hashes = [bytes([i]) * 20 for i in range(65)]
    with pytest.raises(QueryError, match="too many"):
        parse_scrape(b"&".join(b"info_hash=" + quote_from_bytes(h).encode() for h in hashes))
    repeated = hashes[:64] + hashes[:10]
    raw = b"&".join(b"info_hash=" + quote_from_bytes(h).encode() for h in repeated)
    assert parse_scrape(raw) == hashes[:64]


def test_announce_hash_finds_the_first_info_hash_only() -> None:
    from weightless.wire.query import announce_hash

    assert announce_hash(query()) == HASH
    assert announce_hash(b"xinfo_hash=" + b"a" * 20 + b"&info_hash=" + b"b" * 20) == b"b" * 20
    assert announce_hash(b"info_hash=" + b"c" * 20 + b"&info_hash=" + b"d" * 20) == b"c" * 20
    assert announce_hash(b"info_hash=short") is None
    assert announce_hash(b"peer_id=x") is None


# -- uploaded, downloaded and left are non-negative 64-bit numbers: above 2^63-1 they are
# taken as 2^63-1 (never refused, never a float); a negative one is a failure reason (HTTP)
# or a BEP 15 error (UDP)


MAX = (1 << 63) - 1
H = b"\x11" * 20
COUNTERS = ["uploaded", "downloaded", "left"]

HUGE = [
    ("99999999999999999999", MAX),  # 20 digits: beyond any 64-bit integer
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
    assert INT64_MAX == MAX


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
    """Over UDP: uploaded 2^63-1, then a smaller total (the client restarted): the account
    stays at the limit, an integer, never past it."""
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
