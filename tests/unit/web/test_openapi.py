"""/api/openapi.json: a valid OpenAPI 3.1 document, served as the package ships it, naming
every route of the registry API (schemathesis holds the server to it:
tests/integration/test_schemathesis.py)."""

from __future__ import annotations

import json
import re
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
    documented = operations()
    assert served - set(documented) == set()
    # every documented operation is served: none is marked x-weightless-issue (planned)
    planned = {key for key, op in documented.items() if "x-weightless-issue" in op}
    assert set(documented) - served <= planned
    assert planned == set()


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
    # entries carry the signing fields; uploads of the wrong content type get a 415
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
