"""Fuzz harness: what the JSON API takes from a client before any database sees it: the body of
POST /api/registry, the raw upload with its query parameters, and search parameters
(weightless.registry.entries, .search, weightless.web.querystring).

Anything but a result or the 400 kinds (Invalid, QueryStringError) is a crash, and so is a
result a database could not store (a NUL in text, a size outside 0..2^63-1). Run it alone with
``python tests/fuzz/fuzz_api_bodies.py tests/fuzz/corpus/api_bodies``."""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from weightless.registry.entries import (
        TEXT_FIELDS,
        Entry,
        Invalid,
        parse_json_body,
        parse_upload,
    )
    from weightless.registry.search import MAX_LIMIT, MAX_OFFSET, parse_search
    from weightless.web.querystring import QueryStringError, parse_query
    from weightless.wire.numbers import INT64_MAX


def _storable(entry: Entry) -> None:
    for field in ("name", *TEXT_FIELDS):
        value = getattr(entry, field)
        if value is not None and ("\x00" in value or not isinstance(value, str)):
            raise AssertionError(f"{field} cannot be stored: {value!r}")
    if entry.size is not None and not (type(entry.size) is int and 0 <= entry.size <= INT64_MAX):
        raise AssertionError(f"size cannot be stored: {entry.size!r}")
    if len(entry.info_hash) not in (40, 64) or entry.info_hash != entry.info_hash.lower():
        raise AssertionError(f"bad info_hash {entry.info_hash!r}")


def TestOneInput(data: bytes) -> None:
    with contextlib.suppress(Invalid):
        _storable(parse_json_body(data).entry)
    # the same bytes as a query string: an upload's parameters, then a search's
    query, _, body = data.partition(b"\n")
    try:
        params = parse_query(query)
    except QueryStringError:
        return
    try:
        search = parse_search(params)
    except Invalid:
        pass
    else:
        if not (1 <= search.limit <= MAX_LIMIT and 0 <= search.offset <= MAX_OFFSET):
            raise AssertionError(f"search out of range: {search}")
    with contextlib.suppress(Invalid):
        _storable(parse_upload(body, params).entry)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
