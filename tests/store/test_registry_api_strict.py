"""API parameters parsed strictly. Query strings split on ``&`` only (``;`` is
an ordinary character), every malformed number is a 400 with a reason (never a 500), and writes
need a content type no cross-site form can send (415 otherwise). On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from registry_kit import Server, error, make_torrent
from twisted.logger import globalLogPublisher

from weightless.registry.entries import Invalid, parse_whole
from weightless.web.querystring import QueryStringError, parse_query

V2 = hashlib.sha256(b"strict").hexdigest()


# -- the query string parser


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"q=ev;limit=0", {"q": "ev;limit=0"}),
        (b"q=ev;zzz", {"q": "ev;zzz"}),
        (b"q=a;b&limit=5", {"q": "a;b", "limit": "5"}),
        (b"name=a%3Bb", {"name": "a;b"}),
        (b"q=a+b%2Bc", {"q": "a b+c"}),
        (b"q=1&q=2", {"q": "1"}),  # the first value wins
        (b"&&q=x&&", {"q": "x"}),
        (b"flag", {"flag": ""}),
        (b"q=", {"q": ""}),
        (b"q=%C3%BC", {"q": "ü"}),
        (b"q=%", {"q": "%"}),  # a malformed escape stays as it is
        (b"q=%zz", {"q": "%zz"}),
        (b"a=b=c", {"a": "b=c"}),
        (b";=x", {";": "x"}),
        (b"", {}),
    ],
)
def test_parse_query(raw: bytes, expected: dict[str, str]) -> None:
    assert parse_query(raw) == expected


@pytest.mark.parametrize("raw", [b"q=%FF", b"q=%C3", b"%FF=x", b"q=\xff", b"q=%ED%A0%80"])
def test_parse_query_refuses_what_is_not_utf8(raw: bytes) -> None:
    with pytest.raises(QueryStringError):
        parse_query(raw)


# -- numbers

BAD_NUMBERS = [
    "--5",
    "--1",
    "-",
    "+5",
    " 5",
    "5 ",
    "5\n",
    "1.0",
    "1e3",
    "0x10",
    "",
    "²",
    "١٢",
    "5_000",
    "1,000",
    "9" * 5000,
    "1" + "0" * 19,  # 10^19 > 2^63-1
    "-" + "9" * 5000,
    "9223372036854775808",
]


@pytest.mark.parametrize("text", BAD_NUMBERS)
def test_parse_whole_refuses(text: str) -> None:
    with pytest.raises(Invalid, match="whole number from"):
        parse_whole(text, "n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("007", 7), ("9223372036854775807", 2**63 - 1), ("0" * 5000 + "1", 1)],
)
def test_parse_whole_takes(text: str, expected: int) -> None:
    assert parse_whole(text, "n") == expected


# -- over HTTP, on both backends


@pytest.fixture
def server_errors() -> Any:
    """Tracebacks logged while a test runs (a 500 logs one)."""
    found: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_failure") is not None:
            found.append(str(event.get("log_format")))

    globalLogPublisher.addObserver(observe)
    yield found
    globalLogPublisher.removeObserver(observe)


@pytest_twisted.ensureDeferred
async def test_semicolon_is_an_ordinary_character(server: Server, tmp_path: Path) -> None:
    for name in ("ev", "ev;zzz", "ev;limit=0"):
        r = await server.post_json(
            {"info_hash": hashlib.sha256(name.encode()).hexdigest(), "name": name}
        )
        assert r.status == 201, r.body
    r = await server.get("/api/registry/search?q=ev;limit=0")
    assert r.status == 200, r.body
    assert [e["name"] for e in r.json()] == ["ev;limit=0"]
    r = await server.get("/api/registry/search?q=ev;zzz")
    assert [e["name"] for e in r.json()] == ["ev;zzz"]
    r = await server.get("/api/registry/search?q=ev;sort=bogus")  # not a sort parameter
    assert r.status == 200 and r.json() == []
    # an upload's name is not cut at a ";"
    data = make_torrent(tmp_path, "semi.bin")
    r = await server.request(
        "POST",
        "/api/registry/torrent?name=a;b;c&tags=x;y",
        data,
        {"Content-Type": "application/x-bittorrent"},
    )
    assert r.status == 201, r.body
    entry = (await server.get("/api/registry", info_hash=r.json()["info_hash"])).json()
    assert (entry["name"], entry["tags"]) == ("a;b;c", "x;y")


@pytest.mark.parametrize("text", BAD_NUMBERS)
@pytest_twisted.ensureDeferred
async def test_malformed_numbers_are_400_never_500(
    server: Server, tmp_path: Path, text: str, server_errors: list[str]
) -> None:
    from urllib.parse import quote

    q = quote(text, safe="")
    for parameter in ("limit", "offset"):
        r = await server.get(f"/api/registry/search?{parameter}={q}")
        assert parameter in error(r, 400)
    data = make_torrent(tmp_path, "n.bin")
    r = await server.request(
        "POST",
        f"/api/registry/torrent?size={q}",
        data,
        {"Content-Type": "application/x-bittorrent"},
    )
    assert "size" in error(r, 400)
    assert server_errors == []


@pytest.mark.parametrize("size", ["9" * 5000, 10**30, -1, 1.5, "12", True, 1e400, [1], {"n": 1}])
@pytest_twisted.ensureDeferred
async def test_malformed_json_sizes_are_400(
    server: Server, size: Any, server_errors: list[str]
) -> None:
    if isinstance(size, str) and size.isdigit() and len(size) > 100:
        body = b'{"info_hash": "%s", "name": "n", "size": %s}' % (V2.encode(), size.encode())
    else:
        body = json.dumps({"info_hash": V2, "name": "n", "size": size}).encode()
    r = await server.request("POST", "/api/registry", body, {"Content-Type": "application/json"})
    error(r, 400)
    assert server_errors == []


JSON_OK = [
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON",
    "application/json;charset=UTF-8",
    " application/json ",
]
JSON_REFUSED = [
    None,
    "",
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/jsonx",
    "application/json-patch+json",
    "text/json",
    "application/x-bittorrent",
    "*/*",
]


@pytest.mark.parametrize("content_type", JSON_OK)
@pytest_twisted.ensureDeferred
async def test_post_json_content_types_accepted(server: Server, content_type: str) -> None:
    body = json.dumps({"info_hash": V2, "name": "n"}).encode()
    r = await server.request("POST", "/api/registry", body, {"Content-Type": content_type})
    assert r.status == 201, r.body


@pytest.mark.parametrize("content_type", JSON_REFUSED)
@pytest_twisted.ensureDeferred
async def test_post_json_other_content_types_are_415(
    server: Server, content_type: str | None
) -> None:
    body = json.dumps({"info_hash": V2, "name": "n"}).encode()
    headers = {} if content_type is None else {"Content-Type": content_type}
    assert "application/json" in error(
        await server.request("POST", "/api/registry", body, headers), 415
    )
    assert (await server.get("/api/registry", info_hash=V2)).status == 404  # nothing written


UPLOAD_REFUSED = [
    None,
    "text/plain",
    "TEXT/PLAIN; charset=utf-8",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=UTF-8",
    "multipart/form-data",
    "multipart/form-data; boundary=----WebKitFormBoundary",
    "application/octet-stream",
    "application/json",
]
UPLOAD_OK = ["application/x-bittorrent", "Application/X-BitTorrent; charset=binary"]


@pytest.mark.parametrize("content_type", UPLOAD_REFUSED)
@pytest_twisted.ensureDeferred
async def test_upload_cross_site_content_types_are_415(
    server: Server, tmp_path: Path, content_type: str | None
) -> None:
    data = make_torrent(tmp_path, "x.bin")
    headers = {} if content_type is None else {"Content-Type": content_type}
    r = await server.request("POST", "/api/registry/torrent", data, headers)
    error(r, 415)
    assert (await server.get("/api/registry/search")).json() == []


@pytest.mark.parametrize("content_type", UPLOAD_OK)
@pytest_twisted.ensureDeferred
async def test_upload_content_types_accepted(
    server: Server, tmp_path: Path, content_type: str
) -> None:
    r = await server.request(
        "POST",
        "/api/registry/torrent",
        make_torrent(tmp_path, "y.bin"),
        {"Content-Type": content_type},
    )
    assert r.status == 201, r.body


@pytest.mark.parametrize("content_type", JSON_REFUSED)
@pytest_twisted.ensureDeferred
async def test_a_cross_site_form_cannot_set_the_operators_mark(
    server: Server, content_type: str | None
) -> None:
    """Without a registry key, the mark is one request away: only one with a preflight."""
    assert (await server.post_json({"info_hash": V2, "name": "n"})).status == 201
    headers = {} if content_type is None else {"Content-Type": content_type}
    r = await server.request(
        "POST", "/api/registry/verify", b"", headers, info_hash=V2, verified="true"
    )
    assert "application/json" in error(r, 415)
    assert (await server.get("/api/registry", info_hash=V2)).json()["verified"] is False
    ok = {"Content-Type": "application/json"}
    r = await server.request("POST", "/api/registry/verify", b"", ok, info_hash=V2, verified="1")
    assert r.status == 200 and r.json()["verified"] is True


@pytest.mark.parametrize("content_type", JSON_REFUSED)
@pytest_twisted.ensureDeferred
async def test_a_cross_site_form_cannot_trust_a_key(
    server: Server, content_type: str | None
) -> None:
    key = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"  # RFC 8032 test 1
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = json.dumps({"keys": [key]}).encode()
    assert "application/json" in error(
        await server.request("PUT", "/api/publishers/org", body, headers), 415
    )
    assert (await server.get("/api/publishers/org")).json()["keys"] == []
