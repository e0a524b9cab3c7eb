"""Fuzz harness: announce and scrape query strings (weightless.wire.query).

Only QueryError may come out of the parsers, and the fast %-decoder must agree with the strict
definition (a % not followed by two hex digits is an error, anything else decodes as
urllib's unquote_to_bytes does, + being a space)."""

from __future__ import annotations

import contextlib
import re
import sys
from urllib.parse import unquote_to_bytes

import atheris

with atheris.instrument_imports(include=["weightless"]):
    from weightless.wire import query

_BAD = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def TestOneInput(data: bytes) -> None:
    for parse in (query.parse_announce, query.parse_scrape):
        with contextlib.suppress(query.QueryError):
            parse(data)
    query.announce_hash(data)
    try:
        decoded = query._unquote(data)
    except query.QueryError:
        if not _BAD.search(data):
            raise AssertionError(f"refused a well-formed value: {data!r}") from None
        return
    if _BAD.search(data):
        raise AssertionError(f"accepted a malformed escape: {data!r} -> {decoded!r}")
    expected = unquote_to_bytes(data.replace(b"+", b" "))
    if decoded != expected:
        raise AssertionError(f"{data!r} decoded as {decoded!r}, not {expected!r}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
