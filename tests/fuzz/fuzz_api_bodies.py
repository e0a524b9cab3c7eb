"""Fuzz harness: what the JSON API takes from a client before any database sees it: the body of
POST /api/registry, the raw upload with its query parameters, search parameters and the trusted
keys of PUT /api/publishers (weightless.registry.entries, .search, .service.parse_trusted_keys,
weightless.web.querystring).

Anything but a result or the 400 kinds (Invalid, QueryStringError) is a crash, and so is a
result a database could not store (a NUL in text, a size outside 0..2^63-1), text people read
holding a control or bidirectional character, or a key that is not an Ed25519 point of large
order. Run it alone with
``python tests/fuzz/fuzz_api_bodies.py tests/fuzz/corpus/api_bodies``."""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from weightless.registry.entries import (
        MULTILINE_FIELDS,
        TEXT_FIELDS,
        Entry,
        Invalid,
        Submission,
        parse_json_body,
        parse_upload,
    )
    from weightless.registry.search import MAX_LIMIT, MAX_OFFSET, parse_search
    from weightless.registry.service import parse_trusted_keys
    from weightless.torrent.signing import check_public_key
    from weightless.web.querystring import QueryStringError, parse_query
    from weightless.wire.numbers import INT64_MAX
    from weightless.wire.text import unsafe_char


def _storable(submission: Submission) -> None:
    entry: Entry = submission.entry
    for field in ("name", *TEXT_FIELDS):
        value = getattr(entry, field)
        if value is not None and ("\x00" in value or not isinstance(value, str)):
            raise AssertionError(f"{field} cannot be stored: {value!r}")
        if value is not None and unsafe_char(value, multiline=field in MULTILINE_FIELDS):
            raise AssertionError(f"{field} cannot be shown: {value!r}")
    for signature in submission.signatures:
        check_public_key(signature.pub)  # BadKey here is a crash: the key was taken
    if entry.size is not None and not (type(entry.size) is int and 0 <= entry.size <= INT64_MAX):
        raise AssertionError(f"size cannot be stored: {entry.size!r}")
    if len(entry.info_hash) not in (40, 64) or entry.info_hash != entry.info_hash.lower():
        raise AssertionError(f"bad info_hash {entry.info_hash!r}")


def TestOneInput(data: bytes) -> None:
    with contextlib.suppress(Invalid):
        _storable(parse_json_body(data))
    with contextlib.suppress(Invalid):
        for key in parse_trusted_keys(data):
            check_public_key(bytes.fromhex(key))
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
        _storable(parse_upload(body, params))


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
