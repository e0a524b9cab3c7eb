"""The query string of an API request, parsed strictly and once.

As WHATWG URL's application/x-www-form-urlencoded parser has it: pairs are split on ``&`` only
(``;`` is an ordinary character: ``q=ev;zzz`` searches for ``ev;zzz``), ``+`` is a space, ``%XX``
is a byte, and the bytes must be UTF-8. twisted.web's ``parse_qs`` also splits on ``;``, which
cut an upload's name and let ``q=ev;limit=0`` set ``limit``. The first value of a name wins."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

_CACHE = "_weightless_query"


class QueryStringError(ValueError):
    """A query string that is not UTF-8 once decoded."""


def parse_query(raw: bytes) -> dict[str, str]:
    """``{name: first value}`` of a query string (the part after ``?``)."""
    out: dict[str, str] = {}
    for pair in raw.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        try:
            key = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8")
            if key not in out:
                out[key] = unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            raise QueryStringError("query parameters must be UTF-8") from None
    return out


def query_params(request: Any) -> dict[str, str]:
    """The parameters of ``request.uri`` (never of the body), parsed on first use."""
    cached: dict[str, str] | None = getattr(request, _CACHE, None)
    if cached is None:
        uri: bytes = request.uri
        cached = parse_query(uri.partition(b"?")[2].partition(b"#")[0])
        setattr(request, _CACHE, cached)
    return cached
