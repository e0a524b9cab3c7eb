"""The strict bencode decoder: values, where the top-level values lie, and every form it
refuses (non-canonical numbers, duplicate keys, deep nesting, too many values, trailing bytes)."""

from __future__ import annotations

import pytest

from weightless.torrent.bdecode import MAX_NESTING, BdecodeError, bdecode

MANY = 1000


def test_values() -> None:
    assert bdecode(b"i-42e", MANY) == (-42, {})
    assert bdecode(b"0:", MANY) == (b"", {})
    assert bdecode(b"4:spam", MANY) == (b"spam", {})
    assert bdecode(b"li1e3:abce", MANY) == ([1, b"abc"], {})
    assert bdecode(b"d1:ad1:bi2eee", MANY)[0] == {b"a": {b"b": 2}}


def test_spans_point_at_each_top_level_value_as_written() -> None:
    data = b"d8:announce3:url4:infod6:lengthi3eee"
    top, spans = bdecode(data, MANY)
    assert set(spans) == {b"announce", b"info"}
    start, end = spans[b"info"]
    assert data[start:end] == b"d6:lengthi3ee"  # the exact bytes an info hash is taken over
    assert data[slice(*spans[b"announce"])] == b"3:url"
    assert top[b"info"] == {b"length": 3}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"i03e", "invalid integer at byte 0"),
        (b"i-0e", "invalid integer at byte 0"),
        (b"i" + b"9" * 20 + b"e", "invalid integer at byte 0"),
        (b"li1e04:abce", "invalid string length at byte 4"),
        (b"5:abc", "truncated bencode data"),
        (b"li1e", "truncated bencode data"),
        (b"", "truncated bencode data"),
        (b"x", "invalid bencode at byte 0"),
        (b"e", "unexpected end marker at byte 0"),
        (b"di1ei2ee", "dictionary key at byte 1 is not a string"),
        (b"d1:ai1e1:ai2ee", "duplicate dictionary key b'a'"),
        (b"i1ei2e", "trailing data"),
    ],
)
def test_refused(data: bytes, reason: str) -> None:
    with pytest.raises(BdecodeError, match=reason):
        bdecode(data, MANY)


def test_nesting_is_bounded() -> None:
    assert bdecode(b"l" * MAX_NESTING + b"e" * MAX_NESTING, MANY)[0] is not None
    deeper = MAX_NESTING + 1
    with pytest.raises(BdecodeError, match="nested too deeply"):
        bdecode(b"l" * deeper + b"e" * deeper, MANY)


def test_the_number_of_values_is_bounded() -> None:
    assert bdecode(b"li1ei2ee", 3)[0] == [1, 2]
    with pytest.raises(BdecodeError, match="more than 2 bencode values"):
        bdecode(b"li1ei2ee", 2)


def test_it_is_a_value_error() -> None:
    assert issubclass(BdecodeError, ValueError)
