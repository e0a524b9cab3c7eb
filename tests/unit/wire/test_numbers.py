"""The numbers every layer agrees on are one set of objects: the 64-bit bound where counters
saturate and sizes are refused, and the announce event numbers of both codecs."""

from __future__ import annotations

import struct

from weightless.registry import entries, sql
from weightless.torrent import metainfo
from weightless.wire import numbers, query, udp


def test_int64_max_is_the_largest_signed_64_bit_integer() -> None:
    assert numbers.INT64_MAX == 2**63 - 1 == struct.unpack(">q", b"\x7f" + b"\xff" * 7)[0]


def test_every_bound_is_int64_max() -> None:
    assert query.MAX_COUNTER == numbers.INT64_MAX  # an announce counter saturates here
    assert sql.MAX_COUNTER == numbers.INT64_MAX  # a stored total saturates here
    assert metainfo.MAX_LENGTH == numbers.INT64_MAX  # a longer file is refused
    assert entries.MAX_SIZE == numbers.INT64_MAX  # a larger entry size is refused


def test_events_have_bep_15_numbers_in_both_codecs() -> None:
    assert (
        numbers.EVENT_NONE,
        numbers.EVENT_COMPLETED,
        numbers.EVENT_STARTED,
        numbers.EVENT_STOPPED,
        numbers.EVENT_PAUSED,
    ) == (0, 1, 2, 3, 4)
    for codec in (query, udp):
        assert codec.EVENT_NONE == numbers.EVENT_NONE
        assert codec.EVENT_COMPLETED == numbers.EVENT_COMPLETED
        assert codec.EVENT_STARTED == numbers.EVENT_STARTED
        assert codec.EVENT_STOPPED == numbers.EVENT_STOPPED
