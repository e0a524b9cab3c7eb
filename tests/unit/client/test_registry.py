"""The registry client (weightless.client.registry) against a registry played by
httpx.MockTransport: what it sends, what it makes of the answers, and how every failure
becomes a one-line ClientError."""

from __future__ import annotations

import httpx
import pytest

from weightless.client.errors import ClientError
from weightless.client.registry import RETRIES, Registry, SearchPage
from weightless.client.trackers import Tracker

from .kit import H40, H64, Served, entry, serve

TRACKER = Tracker("http://tracker.example:8080")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Served:
    return serve(monkeypatch)


@pytest.fixture
def registry(served: Served) -> Registry:
    return Registry(TRACKER, api_key="k3y")


def one_line(error: pytest.ExceptionInfo[ClientError]) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


def answer(served: Served, response: httpx.Response) -> None:
    served.override = lambda request: response


# -- what is asked


def test_entry_by_either_hash_and_none_when_unknown(served: Served, registry: Registry) -> None:
    served.add(entry(H64, H40, name="m"))
    assert registry.entry(H64)["name"] == "m"  # type: ignore[index]
    assert registry.entry(H40)["info_hash"] == H64  # type: ignore[index]
    assert registry.entry("ef" * 32) is None
    sent = served.requests[0]
    assert sent.method == "GET"
    assert str(sent.url) == f"http://tracker.example:8080/api/registry?info_hash={H64}"
    assert sent.headers["User-Agent"] == "weightless-client"
    assert "X-Weightless-Key" not in sent.headers  # reads carry no key


def test_search_sends_only_the_given_parameters(served: Served, registry: Registry) -> None:
    served.add(entry(H64, None, name="Llama-7B"))
    page = registry.search("llama", category="models", sort="seeders", limit=10, offset=0)
    assert page == SearchPage(1, [served.entries[H64]])
    params = dict(served.requests[0].url.params)
    assert params == {
        "q": "llama",
        "category": "models",
        "sort": "seeders",
        "limit": "10",
        "offset": "0",
    }
    registry.search(None, publisher="", tags="chat")
    assert dict(served.requests[1].url.params) == {"tags": "chat", "limit": "50", "offset": "0"}


def test_search_total_falls_back_to_the_page_length(served: Served, registry: Registry) -> None:
    answer(served, httpx.Response(200, json=[entry()], headers={"X-Total-Count": "many"}))
    assert registry.search("x").total == 1
    answer(served, httpx.Response(200, json=[entry(), entry()]))
    assert registry.search("x").total == 2
    answer(served, httpx.Response(200, json=[], headers={"X-Total-Count": "7"}))
    assert registry.search("x", offset=7) == SearchPage(7, [])


def test_search_by_sends_the_parameters_as_they_are(served: Served, registry: Registry) -> None:
    served.add(entry(name="gpt", publisher="acme", version="v1"))
    served.add(entry("01" * 32, None, name="gpt", publisher="other"))
    page = registry.search_by({"name": "gpt", "publisher": "acme", "limit": "100"})
    assert [e["publisher"] for e in page.entries] == ["acme"]
    assert dict(served.requests[0].url.params) == {
        "name": "gpt",
        "publisher": "acme",
        "limit": "100",
    }


def test_trusted_keys_quotes_the_publisher_and_lowercases(
    served: Served, registry: Registry
) -> None:
    served.keys["Org/Team A"] = ["AB" * 32]
    assert registry.trusted_keys("Org/Team A") == ["ab" * 32]
    assert served.requests[0].url.raw_path == b"/api/publishers/Org%2FTeam%20A"
    assert registry.trusted_keys("nobody") == []


def test_torrent_bytes_or_none(served: Served, registry: Registry) -> None:
    served.add(entry(H64, H40), b"d4:infod4:name1:xee")
    assert registry.torrent(H40) == b"d4:infod4:name1:xee"
    served.add(entry("ef" * 32, None))
    assert registry.torrent("ef" * 32) is None


def test_upload_sends_the_exact_bytes_the_key_and_set_fields(
    served: Served, registry: Registry
) -> None:
    served.api_key = "k3y"
    served.override = lambda request: httpx.Response(
        201, json={"status": "created", "info_hash": H64, "v1_info_hash": H40}
    )
    got = registry.upload(b"d8:announce0:e", {"name": "m", "publisher": "", "tags": "a,b"})
    assert got == {"status": "created", "info_hash": H64, "v1_info_hash": H40}
    sent = served.requests[0]
    assert sent.method == "POST" and sent.url.path == "/api/registry/torrent"
    assert sent.content == b"d8:announce0:e"
    assert sent.headers["Content-Type"] == "application/x-bittorrent"
    assert sent.headers["X-Weightless-Key"] == "k3y"
    assert dict(sent.url.params) == {"name": "m", "tags": "a,b"}  # empty fields left out


def test_a_token_of_any_publisher_name_is_sent_as_utf8(served: Served) -> None:
    served.override = lambda request: httpx.Response(201, json={"info_hash": H64})
    token = "mistral-é 北京." + "ab" * 32
    Registry(TRACKER, api_key=token).upload(b"x", {})
    sent = served.requests[0].headers.raw
    assert (b"X-Weightless-Key", token.encode("utf-8")) in sent


@pytest.mark.parametrize("key", ["k3y\n", "k3y\r\nX-Evil: 1", "\x1b]52;c;x\x07", " k3y", "k3y\t"])
def test_a_key_no_header_can_carry_is_one_line(served: Served, key: str) -> None:
    with pytest.raises(ClientError) as e:
        Registry(TRACKER, api_key=key).upload(b"x", {})
    assert "WL_API_KEY" in str(e.value) and "\n" not in str(e.value)
    assert served.requests == []


def test_upload_without_a_key_sends_no_key_header(served: Served) -> None:
    served.override = lambda request: httpx.Response(201, json={"info_hash": H64})
    Registry(TRACKER).upload(b"x", {})
    assert "X-Weightless-Key" not in served.requests[0].headers


def test_a_tracker_under_a_prefix(served: Served) -> None:
    with Registry(Tracker("https://t.example/tracker/")) as registry:
        registry.entry(H64)
    assert str(served.requests[0].url).startswith("https://t.example/tracker/api/registry?")


# -- errors: one line a person can act on


def test_the_registry_error_and_status_are_reported(served: Served, registry: Registry) -> None:
    answer(served, httpx.Response(409, json={"error": "info_hash is blocked"}))
    with pytest.raises(ClientError) as e:
        registry.upload(b"x", {})
    assert one_line(e) == "registering the torrent: info_hash is blocked (HTTP 409)"


def test_401_says_how_to_give_the_key(served: Served, registry: Registry) -> None:
    answer(served, httpx.Response(401, json={"error": "bad key"}))
    with pytest.raises(ClientError) as e:
        registry.upload(b"x", {})
    assert "bad key" in one_line(e) and "--api-key or WL_API_KEY" in str(e.value)
    assert str(e.value).endswith("(HTTP 401)")


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, text="<html>oops</html>"),
        httpx.Response(500, json=["error"]),
        httpx.Response(500, json={"message": "no error key"}),
    ],
    ids=["html", "list", "no-error-key"],
)
def test_an_error_without_a_usable_body_uses_the_reason_phrase(
    served: Served, registry: Registry, response: httpx.Response
) -> None:
    answer(served, response)
    with pytest.raises(ClientError) as e:
        registry.entry(H64)
    assert one_line(e) == f"looking up {H64}: Internal Server Error (HTTP 500)"


def test_an_unknown_status_has_a_reason_anyway(served: Served, registry: Registry) -> None:
    answer(served, httpx.Response(599, content=b""))
    with pytest.raises(ClientError) as e:
        registry.search("x")
    assert one_line(e).startswith("searching the registry: ")
    assert "(HTTP 599)" in str(e.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.entry(H64),
        lambda r: r.search("x"),
        lambda r: r.trusted_keys("p"),
        lambda r: r.upload(b"x", {}),
    ],
    ids=["entry", "search", "trusted_keys", "upload"],
)
def test_a_non_json_answer_asks_whether_it_is_a_weightless_tracker(
    served: Served, registry: Registry, call: object
) -> None:
    def html(request: httpx.Request) -> httpx.Response:
        status = 201 if request.method == "POST" else 200
        return httpx.Response(status, text="<html>a web server</html>")

    served.override = html
    with pytest.raises(ClientError) as e:
        call(registry)  # type: ignore[operator]
    assert one_line(e).endswith(
        "http://tracker.example:8080 did not answer JSON; is it a Weightless tracker?"
    )


def test_search_refuses_an_answer_that_is_not_a_list(served: Served, registry: Registry) -> None:
    answer(served, httpx.Response(200, json={"entries": []}))
    with pytest.raises(ClientError) as e:
        registry.search("x")
    assert one_line(e) == "searching the registry: the answer is not a list of entries"


@pytest.mark.parametrize(
    "body", [[], {"keys": "ab"}, {"keys": [1, 2]}, {"nokeys": []}, "keys"], ids=repr
)
def test_trusted_keys_refuses_a_malformed_answer(
    served: Served, registry: Registry, body: object
) -> None:
    answer(served, httpx.Response(200, json=body))
    with pytest.raises(ClientError) as e:
        registry.trusted_keys("acme")
    assert one_line(e) == "looking up the keys trusted for 'acme': the answer has no list of keys"


def test_a_huge_answer_is_still_one_line(served: Served, registry: Registry) -> None:
    answer(served, httpx.Response(502, content=b"x\n" * 5_000_000))
    with pytest.raises(ClientError) as e:
        registry.entry(H64)
    assert one_line(e) == f"looking up {H64}: Bad Gateway (HTTP 502)"


def test_a_huge_error_message_is_carried_on_one_line(served: Served, registry: Registry) -> None:
    answer(served, httpx.Response(400, json={"error": "limit must be 1 to 100"}))
    with pytest.raises(ClientError) as e:
        registry.search("x", limit=500)
    assert one_line(e) == "searching the registry: limit must be 1 to 100 (HTTP 400)"


def test_unreachable_tracker(served: Served, registry: Registry) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    served.override = refuse
    with pytest.raises(ClientError) as e:
        registry.entry(H64)
    assert one_line(e) == (
        "cannot reach the tracker at http://tracker.example:8080: [Errno 111] Connection refused"
    )


def test_an_error_without_text_is_named_by_its_kind(served: Served, registry: Registry) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("", request=request)

    served.override = broken
    with pytest.raises(ClientError) as e:
        registry.search("x")
    assert one_line(e).endswith(": RemoteProtocolError")


def test_timeout(served: Served, registry: Registry) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    served.override = slow
    with pytest.raises(ClientError) as e:
        registry.torrent(H64)
    assert one_line(e) == "the tracker at http://tracker.example:8080 did not answer within 30 s"


# -- 429: wait as told (within bounds), then give up with the error


def test_429_waits_retry_after_then_succeeds(served: Served, registry: Registry) -> None:
    waits = iter(["3", "0", "bogus", "3600"])

    def busy(request: httpx.Request) -> httpx.Response | None:
        wait = next(waits, None)
        if wait is None:
            return None
        return httpx.Response(429, json={"error": "slow down"}, headers={"Retry-After": wait})

    served.override = busy
    served.add(entry())
    assert registry.entry(H64) is not None
    assert served.slept == [3.0, 0.2, 1.0, 10.0]  # at least 0.2 s, 1 s if unreadable, at most 10


def test_429_every_time_gives_the_error_after_the_retries(
    served: Served, registry: Registry
) -> None:
    answer(served, httpx.Response(429, json={"error": "rate limited"}))
    with pytest.raises(ClientError) as e:
        registry.search("x")
    assert one_line(e) == "searching the registry: rate limited (HTTP 429)"
    assert len(served.requests) == RETRIES + 1
    assert served.slept == [1.0] * RETRIES


def test_redirects_within_the_origin_are_followed(served: Served, registry: Registry) -> None:
    def moved(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/api/registry":
            return httpx.Response(301, headers={"Location": f"/api/registry/?info_hash={H64}"})
        if request.url.path == "/api/registry/":
            return httpx.Response(200, json=entry(name="moved"))
        return None

    served.override = moved
    assert registry.entry(H64)["name"] == "moved"  # type: ignore[index]
    assert [r.url.path for r in served.requests] == ["/api/registry", "/api/registry/"]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize(
    "location",
    [
        "https://tracker.example:8080/api/registry/torrent",  # another scheme
        "http://tracker.example:8081/api/registry/torrent",  # another port
        "http://evil.example:8080/api/registry/torrent",  # another host
        "//evil.example/api/registry/torrent",  # scheme-relative
        "http://tracker.example.evil.example:8080/x",
    ],
)
def test_a_redirect_to_another_origin_is_refused_and_the_key_stays(
    served: Served, registry: Registry, status: int, location: str
) -> None:
    """``publish --api-key`` must not hand the registry key to whatever origin a 3xx names."""
    served.override = lambda request: (
        httpx.Response(status, headers={"Location": location})
        if request.url.host == "tracker.example" and request.url.port == 8080
        else httpx.Response(201, json={"status": "created", "info_hash": H64})
    )
    with pytest.raises(ClientError) as e:
        registry.upload(b"d4:infod4:name1:xee", {"name": "x"})
    message = one_line(e)
    assert "redirected to" in message and "another origin: refused" in message
    assert len(served.requests) == 1  # nothing went to the other origin
    assert served.requests[0].headers["X-Weightless-Key"] == "k3y"


@pytest.mark.parametrize("status", [200, 400])
def test_json_nested_too_deeply_is_one_line(
    served: Served, registry: Registry, status: int
) -> None:
    answer(served, httpx.Response(status, content=b"[" * 200_000))
    with pytest.raises(ClientError) as e:
        registry.search("x")
    assert "did not answer JSON" in one_line(e) or "(HTTP 400)" in one_line(e)


def test_redirect_loops_end(served: Served, registry: Registry) -> None:
    served.override = lambda request: httpx.Response(
        302, headers={"Location": "/api/registry/search"}
    )
    with pytest.raises(ClientError) as e:
        registry.search("x")
    assert "redirected more than 5 times" in one_line(e)


def test_search_refuses_entries_that_are_not_objects(served: Served, registry: Registry) -> None:
    """`weightless search` prints a table of entries: a list of strings must be refused here
    with one line, not crash the table with a traceback."""
    answer(served, httpx.Response(200, json=["a", 1]))
    with pytest.raises(ClientError):
        registry.search("x")


# -- a hostile registry: answers of the wrong shape are one line, never a traceback


@pytest.mark.parametrize("wait", ["nan", "NaN", "-nan", "inf", "-inf", "1e999", "-5", "0x10"])
def test_429_with_a_retry_after_no_clock_can_wait_is_bounded(
    served: Served, registry: Registry, wait: str
) -> None:
    waits = iter([wait])

    def busy(request: httpx.Request) -> httpx.Response | None:
        if next(waits, None) is None:
            return None
        return httpx.Response(429, json={"error": "slow down"}, headers={"Retry-After": wait})

    served.override = busy
    served.add(entry())
    assert registry.entry(H64) is not None
    assert len(served.slept) == 1 and 0.2 <= served.slept[0] <= 10.0


@pytest.mark.parametrize(
    "body",
    [
        b'[{"info_hash": "' + H64.encode() + b'", "size": NaN}]',
        b'[{"info_hash": "' + H64.encode() + b'", "seeders": Infinity}]',
        b'[{"info_hash": "' + H64.encode() + b'", "leechers": -Infinity}]',
        b'[{"info_hash": "' + H64.encode() + b'", "size": 1e999}]',
    ],
    ids=["NaN", "Infinity", "-Infinity", "1e999"],
)
def test_json_numbers_json_cannot_carry_are_not_json(
    served: Served, registry: Registry, body: bytes
) -> None:
    # `--json` prints what the registry answered: NaN or Infinity there would not be JSON
    answer(served, httpx.Response(200, content=body))
    with pytest.raises(ClientError) as e:
        registry.search("x")
    assert "did not answer JSON" in one_line(e)


@pytest.mark.parametrize("total", ["-5", "-1", "- 3"])
def test_a_negative_total_count_falls_back_to_the_page_length(
    served: Served, registry: Registry, total: str
) -> None:
    answer(served, httpx.Response(200, json=[entry()], headers={"X-Total-Count": total}))
    assert registry.search("x").total == 1


BAD_ENTRIES = [
    entry("../../x"),
    entry("/etc/passwd"),
    entry("ab" * 31),  # hex, but of no hash's length
    entry(12345),
    entry(H64, "../x"),
    entry(H64, 7),
    entry(H64, H40, name=123),
    entry(H64, H40, name=["a"]),
    entry(H64, H40, publisher={"x": 1}),
    entry(H64, H40, version=1.5),
]


@pytest.mark.parametrize("bad", BAD_ENTRIES, ids=repr)
def test_an_entry_of_the_wrong_shape_is_one_line(
    served: Served, registry: Registry, bad: dict[str, object]
) -> None:
    answer(served, httpx.Response(200, json=bad))
    with pytest.raises(ClientError) as e:
        registry.entry(H64)
    assert "is not an entry" in one_line(e)
    answer(served, httpx.Response(200, json=[entry(), bad]))
    with pytest.raises(ClientError) as e:
        registry.search("x")
    assert "is not an entry" in one_line(e)


@pytest.mark.parametrize(
    "cookie", ["s=1", "s=1; Path=/", "s=1; Domain=tracker.example", "s=1; Max-Age=99999999"]
)
def test_a_cookie_the_registry_sets_is_never_sent_back(
    served: Served, registry: Registry, cookie: str
) -> None:
    # the command keeps no session with a registry: a cookie would only let it follow the user
    served.add(entry())
    first = [True]

    def setting(request: httpx.Request) -> httpx.Response | None:
        if first.pop() if first else False:
            return httpx.Response(200, json=entry(), headers={"Set-Cookie": cookie})
        return None

    served.override = setting
    registry.entry(H64)
    registry.entry(H64)
    registry.search("x")
    assert [r.headers.get("Cookie") for r in served.requests] == [None, None, None]
