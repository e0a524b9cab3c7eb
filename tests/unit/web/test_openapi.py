"""/api/openapi.json: a valid OpenAPI 3.1 document, served as the package ships it, naming
every route of the registry API (schemathesis holds the server to it:
tests/integration/test_schemathesis.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

from helpers import Conn, FakeStore, build_stack
from openapi_spec_validator import validate
from twisted.internet.defer import Deferred, succeed

from weightless.web.registry_api import RegistryAPI

DOCUMENT = resources.files("weightless.web").joinpath("openapi.json").read_bytes()
METHODS = ("get", "put", "post", "delete", "patch")


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOCUMENT)
    return loaded


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, item in document()["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_route_of_the_api_is_documented_and_every_operation_is_served() -> None:
    served = set()
    for rule in RegistryAPI.app.url_map.iter_rules():
        path = "/api" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        served |= {(m, path) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    documented = set(operations())
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"


def words(value: Any) -> Iterator[str]:
    """Every key and every string in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from words(item)
    elif isinstance(value, list):
        for item in value:
            yield from words(item)
    elif isinstance(value, str):
        yield value


HISTORY = re.compile(r"\bissues?\b|x-weightless-issue|\bparallel\b|being built", re.IGNORECASE)


def about_history(value: Any) -> list[str]:
    """The keys and texts of a JSON value that speak of work items or of how it was made."""
    return sorted({text for text in words(value) if HISTORY.search(text)})


def test_the_document_describes_the_server_and_nothing_else() -> None:
    """A reader of the document (or a client generated from it) sees what is served, and
    nothing about how the server came to be."""
    assert about_history(document()) == []
    # the check itself finds such words in a tag, a description or an extension key
    marked = {"tags": [{"name": "signing", "description": "signing (a later issue)"}]}
    assert about_history(marked) == ["signing (a later issue)"]
    assert about_history({"get": {"x-weightless-issue": True}}) == ["x-weightless-issue"]
    assert about_history({"info": {"description": "built in parallel"}}) != []


def test_every_status_has_a_body_shape_and_errors_are_the_error_object() -> None:
    doc = document()
    shared = doc["components"]["responses"]
    for (method, path), op in operations().items():
        responses = op["responses"]
        assert "429" in responses, (method, path)
        for status, response in responses.items():
            response = (
                shared[response["$ref"].rpartition("/")[2]] if "$ref" in response else response
            )
            assert response.get("content"), (method, path, status)
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
    search = doc["paths"]["/api/registry/search"]["get"]["responses"]["200"]
    assert "X-Total-Count" in search["headers"]
    scheme = doc["components"]["securitySchemes"]["RegistryKey"]
    assert (scheme["in"], scheme["name"]) == ("header", "X-Weightless-Key")
    for method, path in (("POST", "/api/registry"), ("DELETE", "/api/registry")):
        op = operations()[(method, path)]
        assert {"RegistryKey": []} in op["security"] and "401" in op["responses"]
    # signed entries carry their key and signature; JSON writes refuse other content types
    entry = doc["components"]["schemas"]["RegistryEntry"]["properties"]
    assert entry["publisher_key"]["pattern"] == "^[0-9a-f]{64}$"
    assert entry["signature"]["pattern"] == "^[0-9a-f]{128}$"
    assert "415" in operations()[("POST", "/api/registry")]["responses"]
    assert "415" in operations()[("POST", "/api/registry/torrent")]["responses"]


class EmptyRegistry(FakeStore):
    """A registry with no entries (every other query fails as unreachable)."""

    def search(self, query: Any) -> Deferred[tuple[list[Any], int]]:
        return succeed(([], 0))


def test_served_as_shipped() -> None:
    stack = build_stack(EmptyRegistry(lambda: succeed(None)))
    r = Conn(stack).get(b"/api/openapi.json")
    assert r.status == 200 and r.headers[b"content-type"] == b"application/json"
    assert r.body == DOCUMENT
    page = Conn(stack).get(b"/")
    assert page.status == 200
    assert b'href="/api/openapi.json"' in page.body
