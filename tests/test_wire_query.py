from urllib.parse import quote_from_bytes

import pytest

from weightless.wire.query import (
    EVENT_COMPLETED,
    EVENT_NONE,
    EVENT_PAUSED,
    EVENT_STARTED,
    EVENT_STOPPED,
    MAX_QUERY,
    MAX_SCRAPE_HASHES,
    QueryError,
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
    [b"%ff%FE%0a", b"abc%2", b"%zz1", b"a%3Db=c", b"x+y%20", b"trailing%20%20", b"%09tab", b"ab"],
)
def test_unquote_matches_the_standard_library(raw: bytes) -> None:
    from urllib.parse import unquote_to_bytes

    from weightless.wire.query import _unquote

    assert _unquote(raw) == unquote_to_bytes(raw.replace(b"+", b" "))


def test_every_byte_round_trips() -> None:
    from weightless.wire.query import _unquote

    every = bytes(range(256))
    assert _unquote(quote_from_bytes(every).encode()) == every
    assert _unquote(quote_from_bytes(every).lower().encode()) != b""  # lower hex is fine too
    lower = "".join(f"%{b:02x}" for b in every).encode()
    assert _unquote(lower) == every


def test_announce_hash_finds_the_first_info_hash_only() -> None:
    from weightless.wire.query import announce_hash

    assert announce_hash(query()) == HASH
    assert announce_hash(b"xinfo_hash=" + b"a" * 20 + b"&info_hash=" + b"b" * 20) == b"b" * 20
    assert announce_hash(b"info_hash=" + b"c" * 20 + b"&info_hash=" + b"d" * 20) == b"c" * 20
    assert announce_hash(b"info_hash=short") is None
    assert announce_hash(b"peer_id=x") is None
