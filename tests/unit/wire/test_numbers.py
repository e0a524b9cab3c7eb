"""The numbers every layer agrees on are one set of objects: the 64-bit bound where counters
saturate and sizes are refused, and the announce event numbers of both codecs."""

from __future__ import annotations

import re
import struct
from pathlib import Path

from weightless.wire import numbers, query, udp


def test_int64_max_is_the_largest_signed_64_bit_integer() -> None:
    assert numbers.INT64_MAX == 2**63 - 1 == struct.unpack(">q", b"\x7f" + b"\xff" * 7)[0]


def test_the_bound_is_written_once() -> None:
    """Counters, stored totals, sizes and file lengths all stop at the one INT64_MAX: no other
    module spells the number out (the OpenAPI document's maxima aside)."""
    package = Path(numbers.__file__).resolve().parents[1]
    spelled = re.compile(r"2\s*\*\*\s*63|1\s*<<\s*63|9223372036854775807|0x7[fF]{15}")
    found = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if spelled.search(path.read_text()) and path.name != "numbers.py"
    ]
    assert found == []
    assert spelled.search(Path(numbers.__file__).read_text())


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
