"""API query strings (weightless.web.querystring), parsed as browsers encode forms: pairs split
on ``&`` only, ``+`` is a space, ``%XX`` a byte, the bytes UTF-8, and the first value of a name
wins; a request's parameters come from its URI, parsed once."""

from __future__ import annotations

from typing import Any

import pytest

from weightless.web.querystring import QueryStringError, parse_query, query_params


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (b"", {}),
        (b"q=llama&limit=5", {"q": "llama", "limit": "5"}),
        (b"q=ev;limit=0", {"q": "ev;limit=0"}),  # ; is an ordinary character
        (b"q=a+b%2Bc", {"q": "a b+c"}),
        (b"q=%C3%A9t%C3%A9", {"q": "été"}),
        (b"q=first&q=second", {"q": "first"}),
        (b"&&q=x&", {"q": "x"}),
        (b"flag&q=", {"flag": "", "q": ""}),
        (b"a%20b=c", {"a b": "c"}),
        (b"q=%zz", {"q": "%zz"}),  # not an escape: kept as written
    ],
)
def test_query_strings(raw: bytes, parsed: dict[str, str]) -> None:
    assert parse_query(raw) == parsed


@pytest.mark.parametrize("raw", [b"q=%FF", b"%C3=x", b"q=%C3%28"])
def test_bytes_that_are_not_utf8_are_refused(raw: bytes) -> None:
    with pytest.raises(QueryStringError, match="UTF-8"):
        parse_query(raw)


class Request:
    def __init__(self, uri: bytes) -> None:
        self.uri = uri


def test_a_request_is_parsed_from_its_uri_once() -> None:
    request: Any = Request(b"/api/registry/search?q=a;b&limit=3#frag=1")
    assert query_params(request) == {"q": "a;b", "limit": "3"}
    request.uri = b"/elsewhere?q=changed"
    assert query_params(request) == {"q": "a;b", "limit": "3"}  # the first parse is kept


def test_a_request_without_a_query_has_no_parameters() -> None:
    assert query_params(Request(b"/api/registry/search")) == {}
