"""What every /api request passes before its route: writes carry a Content-Type that no page of
another site can send without a CORS preflight (415 otherwise, as the OpenAPI document says),
and answers to key-gated requests are never cached. In memory, on every route the API serves."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest
from helpers import Conn, FakeStore, Reply, build_stack
from twisted.internet.defer import Deferred, succeed

from weightless.web.registry_api import RegistryAPI

V2 = "ab" * 32
# what a cross-site HTML form or a no-CORS fetch can send without asking (None: no header)
SIMPLE = [
    None,
    "text/plain",
    "text/plain;charset=UTF-8",
    "TEXT/PLAIN",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=UTF-8",
    "multipart/form-data",
    "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk",
]
# other types a careless server might take for JSON or a file
OTHER = ["application/octet-stream", "text/json", "application/jsonp", "*/*", "application/"]


def served() -> list[tuple[str, str]]:
    """(method, path) of every write the API serves, path parameters filled in."""
    found = []
    for rule in RegistryAPI.app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", "someone", rule.rule)
        for method in sorted(rule.methods or ()):
            if method in ("POST", "PUT", "PATCH", "DELETE"):
                found.append((method, "/api" + path))
    return found


WRITES = served()
BODY_WRITES = [(m, p) for m, p in WRITES if m != "DELETE"]


def accepted(method: str, path: str) -> str:
    """What a write must carry: a .torrent file, a model card (Markdown), or JSON."""
    return {
        "/api/registry/torrent": "application/x-bittorrent",
        "/api/registry/card": "text/markdown",
    }.get(path, "application/json")


class Answering(FakeStore):
    """A registry with no entries that finds no user (every write fails as unreachable)."""

    def search(self, query: Any) -> Deferred[tuple[list[Any], int]]:
        return succeed(([], 0))

    def entry(self, key: str) -> Deferred[None]:
        return succeed(None)

    def user(self, user_id: str) -> Deferred[None]:
        return succeed(None)


def stack(**settings: Any) -> Any:
    return build_stack(Answering(lambda: succeed(None)), **settings)


def request(
    s: Any, method: str, target: str, content_type: str | None, *headers: bytes, body: bytes = b""
) -> Reply:
    head = [f"{method} {target}?info_hash={V2}&verified=true HTTP/1.1".encode()]
    head.append(b"Host: tracker.example")
    head.append(b"Origin: https://elsewhere.example")
    if content_type is not None:
        head.append(b"Content-Type: " + content_type.encode())
    head += [*headers, b"Content-Length: " + str(len(body)).encode()]
    conn = Conn(s)
    conn.send(b"\r\n".join(head) + b"\r\n\r\n" + body)
    [reply] = conn.replies()
    return reply


def error(reply: Reply, status: int) -> str:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers[b"content-type"] == b"application/json"
    body = json.loads(reply.body)
    assert set(body) == {"error"} and body["error"], body
    message: str = body["error"]
    return message


def test_every_write_route_is_covered() -> None:
    assert ("POST", "/api/registry/verify") in WRITES
    assert ("PUT", "/api/publishers/someone") in WRITES
    assert ("POST", "/api/registry/torrent") in WRITES
    assert ("DELETE", "/api/registry") in WRITES
    assert ("PUT", "/api/registry/card") in WRITES


@pytest.mark.parametrize("content_type", SIMPLE + OTHER)
@pytest.mark.parametrize(("method", "path"), BODY_WRITES)
def test_writes_a_cross_site_page_can_send_are_refused(
    method: str, path: str, content_type: str | None
) -> None:
    """Without a key set (where a cross-site form could otherwise write) and with one."""
    for settings, key in (({}, ()), ({"registry_key": "k"}, (b"X-Weightless-Key: k",))):
        reply = request(stack(**settings), method, path, content_type, *key, body=b"{}")
        wanted = accepted(method, path)
        assert f"Content-Type must be {wanted}" == error(reply, 415)


@pytest.mark.parametrize(("method", "path"), BODY_WRITES)
def test_writes_with_the_right_content_type_reach_their_route(method: str, path: str) -> None:
    wanted = accepted(method, path)
    for given in (wanted, wanted.upper(), f"{wanted}; charset=utf-8"):
        reply = request(stack(), method, path, given, body=b"{}")
        assert reply.status != 415, (given, reply.status, reply.body)


@pytest.mark.parametrize("content_type", SIMPLE)
def test_a_delete_needs_a_preflight_anyway_so_its_type_is_not_read(
    content_type: str | None,
) -> None:
    """A DELETE cannot be sent across sites without a CORS preflight, and has no body."""
    reply = request(stack(), "DELETE", "/api/registry", content_type)
    assert reply.status == 503, reply.body  # it reached the (unreachable) store


def test_an_unknown_path_or_method_is_not_a_415() -> None:
    assert request(stack(), "POST", "/api/nothing", "text/plain").status == 404
    assert request(stack(), "PUT", "/api/registry", "text/plain").status == 405
    assert request(stack(), "POST", "/api/registry/search", None).status == 405


def test_the_openapi_document_says_so_for_every_write() -> None:
    doc = json.loads(resources.files("weightless.web").joinpath("openapi.json").read_bytes())
    shared = doc["components"]["responses"]
    for method, path in BODY_WRITES:
        template = re.sub("someone", "{publisher}", path)
        op = doc["paths"][template][method.lower()]
        wanted = accepted(method, path)
        assert list(op["requestBody"]["content"]) == [wanted], (method, path)
        refused = op["responses"]["415"]
        refused = shared[refused["$ref"].rpartition("/")[2]] if "$ref" in refused else refused
        assert "text/plain" in refused["description"], (method, path)
    assert "application/json" in doc["info"]["description"]


# -- caching


def no_store(reply: Reply) -> bool:
    return reply.headers.get(b"cache-control") == b"no-store"


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("GET", "/api/registry", None),  # 404
        ("GET", "/api/registry/search", None),  # 200
        ("GET", "/api/publishers/someone", None),  # 503
        ("GET", "/api/openapi.json", None),  # 200
        ("POST", "/api/registry", "text/plain"),  # 415
        ("POST", "/api/registry/verify", "application/json"),  # 404
        ("DELETE", "/api/registry", None),  # 503
        ("GET", "/api/nothing", None),  # 404 of no route
    ],
)
def test_an_answer_to_a_request_with_a_key_is_never_cached(
    method: str, path: str, content_type: str | None
) -> None:
    for key in (b"X-Weightless-Key: k", b"X-Weightless-Key: wrong", b"x-weightless-key: "):
        assert no_store(request(stack(registry_key="k"), method, path, content_type, key))
        assert no_store(request(stack(), method, path, content_type, key))
    assert not no_store(request(stack(registry_key="k"), method, path, content_type))


def test_every_users_answer_is_never_cached() -> None:
    with_key = stack(registry_key="k")
    for reply, status in (
        (request(with_key, "GET", "/api/users/0123456789abcdef", None), 401),
        (
            request(with_key, "GET", "/api/users/0123456789abcdef", None, b"X-Weightless-Key: k"),
            404,
        ),
        (request(stack(), "GET", "/api/users/0123456789abcdef", None), 404),
        (request(stack(), "GET", "/api/users/not%20a%20user", None), 404),
        (request(stack(), "POST", "/api/users/x", "application/json"), 405),
    ):
        assert reply.status == status, reply.body
        assert no_store(reply), reply.headers


def test_the_rate_limits_answer_to_a_key_is_never_cached() -> None:
    s = stack(registry_key="k", rate_limit=1.0, rate_burst=1.0)
    key = b"X-Weightless-Key: k"
    replies = [request(s, "GET", "/api/registry/search", None, key) for _ in range(3)]
    assert replies[-1].status == 429
    assert all(no_store(r) for r in replies)
