"""/api/*: the registry and user endpoints of the spec, as a Klein app behind a gate that
answers CORS and the rate limit.

Thin: each route reads what the request says (query parameters, path, body, the registry key
header), calls `RegistryService`, which holds the registry's rules, and writes its answer as
JSON (but the .torrent download). What the service refuses becomes a status in one place,
`RegistryAPI.failed`; errors are JSON too."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any
from urllib.parse import quote

from klein import Klein
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from weightless.registry.parsepool import Busy
from weightless.registry.search import parse_search
from weightless.registry.service import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RegistryService,
    Unauthorized,
    Unavailable,
    Unreadable,
    Writer,
)
from weightless.tracker.ratelimit import Limiter
from weightless.web.clientip import ClientIP
from weightless.web.querystring import QueryStringError, query_params
from weightless.web.status import set_status

# the contract of every /api endpoint for frontend developers (OpenAPI 3.1), written by hand
OPENAPI = resources.files("weightless.web").joinpath("openapi.json").read_bytes()
JSON = b"application/json"
MARKDOWN = b"text/markdown"
ALLOWED_HEADERS = b"Content-Type, X-Weightless-Key"
EXPOSED_HEADERS = b"X-Total-Count, Retry-After"
TORRENT = b"application/x-bittorrent"
# the Content-Type a write must carry, by method (the raw upload's route aside): none of
# those a page of another site can send without a CORS preflight (text/plain,
# application/x-www-form-urlencoded, multipart/form-data, or none), so that it cannot write
BODY_TYPES = {b"POST": JSON, b"PUT": JSON, b"PATCH": JSON}
# routes whose body is not JSON: the .torrent file itself, and a model card
ROUTE_TYPES = {"upload": TORRENT, "put_card": MARKDOWN}
# the registry's refusals, as statuses; the body's "error" is the refusal's message, but for
# these, where the client is told in the API's own words
STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (Invalid, 400),
    (QueryStringError, 400),  # never the body's parameters: see weightless.web.querystring
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Unreadable, 500),
    (Unavailable, 503),
)
TOLD: dict[type[Exception], str] = {
    Unauthorized: "missing or wrong X-Weightless-Key",
    Unavailable: "database unavailable, try again later",  # the cause goes to the log
}


class ApiError(Exception):
    """What this adapter refuses before the registry is asked: a query string that is not
    UTF-8, a write with the wrong Content-Type."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def json_body(request: IRequest, status: int, value: Any) -> bytes:
    set_status(request, status)
    request.setHeader(b"content-type", JSON)
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def require_content_type(request: IRequest, accepted: tuple[bytes, ...]) -> None:
    """415 unless the media type of Content-Type (parameters such as charset aside) is one of
    ``accepted``."""
    header = request.getHeader(b"content-type") or b""
    if header.split(b";", 1)[0].strip().lower() not in accepted:
        wanted = " or ".join(t.decode() for t in accepted)
        raise ApiError(415, f"Content-Type must be {wanted}")


def content_disposition(name: str) -> bytes:
    """attachment; a plain ASCII filename for old clients and the exact one (RFC 6266)."""
    filename = name if name.lower().endswith(".torrent") else name + ".torrent"
    plain = "".join(
        c if c.isascii() and (c.isalnum() or c in " .-_()[]+,") else "_" for c in filename
    )
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}".encode()


class RegistryAPI:
    app = Klein()
    log = Logger()

    def __init__(
        self,
        registry: RegistryService,
        limiter: Limiter,
        client_ip: ClientIP,
        reactor: IReactorTime,
        cors_origins: Iterable[str] = (),
        passkeys: bool = False,
    ) -> None:
        """``reactor``'s clock is the rate limit's; with ``passkeys`` (TRACKER_SECRET set) plain
        /announce is refused, so entries' magnet links name no tracker."""
        self.registry = registry
        self.limiter = limiter
        self.client_ip = client_ip
        self.reactor = reactor
        self.cors_origins = frozenset(cors_origins)
        self.passkeys = passkeys

    def resource(self) -> IResource:
        return ApiGate(self, self.app.resource())

    def ip(self, request: IRequest) -> str:
        return self.client_ip.of_request(request)

    def _authorize(self, request: IRequest) -> Writer:
        """Writes (and user reads) carry the registry key or a publisher's token in
        X-Weightless-Key."""
        return self.registry.authorize(request.getHeader(b"x-weightless-key"))

    def _trackers(self, request: IRequest) -> tuple[str, ...]:
        """The announce URL entries' magnet links carry: this tracker's, as the client reached
        it; none when announces need a passkey."""
        if self.passkeys:
            return ()
        return (self.client_ip.base_url(request) + "/announce",)

    # -- routes

    @app.route("/registry", methods=["GET"])
    async def get_entry(self, request: IRequest) -> bytes:
        info_hash = query_params(request).get("info_hash")
        entry = await self.registry.get(info_hash, self._trackers(request))
        return json_body(request, 200, entry)

    @app.route("/registry/search", methods=["GET"])
    async def search(self, request: IRequest) -> bytes:
        query = parse_search(query_params(request))
        entries, total = await self.registry.search(query, self._trackers(request))
        request.setHeader(b"x-total-count", str(total).encode())
        return json_body(request, 200, entries)

    @app.route("/registry", methods=["POST"])
    async def post_entry(self, request: IRequest) -> bytes:
        writer = self._authorize(request)
        await self.registry.register_json(request.content.read(), writer)
        return json_body(request, 201, {"status": "created"})

    @app.route("/registry/torrent", methods=["POST"])
    async def upload(self, request: IRequest) -> bytes:
        writer = self._authorize(request)
        body = request.content.read()
        entry = await self.registry.register_upload(body, query_params(request), writer)
        answer = {"status": "created", "info_hash": entry.info_hash}
        if entry.v1_info_hash:
            answer["v1_info_hash"] = entry.v1_info_hash
        return json_body(request, 201, answer)

    @app.route("/registry", methods=["DELETE"])
    async def delete_entry(self, request: IRequest) -> bytes:
        writer = self._authorize(request)
        given = query_params(request)
        await self.registry.delete(given.get("info_hash"), given.get("reason", ""), writer)
        return json_body(request, 200, {"status": "deleted"})

    @app.route("/registry/torrent", methods=["GET"])
    async def download(self, request: IRequest) -> bytes:
        name, data = await self.registry.torrent(query_params(request).get("info_hash"))
        request.setHeader(b"content-type", b"application/x-bittorrent")
        request.setHeader(b"content-disposition", content_disposition(name))
        return data

    @app.route("/registry/meta", methods=["GET"])
    async def meta(self, request: IRequest) -> bytes:
        meta = await self.registry.metadata(query_params(request).get("info_hash"))
        set_status(request, 200)
        request.setHeader(b"content-type", JSON)
        return meta.encode("utf-8")

    @app.route("/registry/card", methods=["GET"])
    async def get_card(self, request: IRequest) -> bytes:
        text = await self.registry.card(query_params(request).get("info_hash"))
        set_status(request, 200)
        request.setHeader(b"content-type", b"text/markdown; charset=utf-8")
        return text.encode("utf-8")

    @app.route("/registry/card", methods=["PUT"])
    async def put_card(self, request: IRequest) -> bytes:
        writer = self._authorize(request)
        info_hash = query_params(request).get("info_hash")
        await self.registry.set_card(info_hash, request.content.read(), writer)
        return json_body(request, 200, {"status": "stored"})

    @app.route("/openapi.json", methods=["GET"])
    def openapi(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", JSON)
        return OPENAPI

    @app.route("/publishers/<path:publisher>", methods=["GET"])
    async def get_publisher(self, request: IRequest, publisher: str) -> bytes:
        keys = await self.registry.publisher_keys(publisher)
        return json_body(request, 200, {"publisher": publisher, "keys": keys})

    @app.route("/publishers/<path:publisher>", methods=["PUT"])
    async def put_publisher(self, request: IRequest, publisher: str) -> bytes:
        writer = self._authorize(request)
        keys = await self.registry.trust(publisher, request.content.read(), writer)
        return json_body(request, 200, {"publisher": publisher, "keys": keys})

    @app.route("/registry/verify", methods=["POST"])
    async def verify(self, request: IRequest) -> bytes:
        writer = self._authorize(request)
        given = query_params(request)
        entry = await self.registry.mark(
            given.get("info_hash"), given.get("verified"), writer, self._trackers(request)
        )
        return json_body(request, 200, entry)

    @app.route("/users/<user_id>", methods=["GET"])
    async def user(self, request: IRequest, user_id: str) -> bytes:
        self.registry.require_operator(self._authorize(request))
        up, down = await self.registry.user(user_id)
        return json_body(request, 200, {"user_id": user_id, "uploaded": up, "downloaded": down})

    @app.handle_errors
    def failed(self, request: IRequest, failure: Failure) -> bytes:  # type: ignore[misc]
        """Every refusal as its status and {"error": message}: the one place they are mapped."""
        error = failure.value
        if isinstance(error, ApiError):
            return json_body(request, error.status, {"error": str(error)})
        if isinstance(error, Busy):
            request.setHeader(b"retry-after", str(error.retry_after).encode())
            return json_body(request, 503, {"error": str(error)})
        for kind, status in STATUSES:
            if isinstance(error, kind):
                if kind is Unavailable:
                    self.log.warn("registry: database unavailable: {e}", e=str(error))
                return json_body(request, status, {"error": TOLD.get(kind, str(error))})
        if isinstance(error, HTTPException):
            if isinstance(error, MethodNotAllowed) and error.valid_methods:
                request.setHeader(b"allow", ", ".join(error.valid_methods).encode())
            return json_body(request, error.code or 500, {"error": error.name.lower()})
        self.log.failure("registry request failed", failure)
        return json_body(request, 500, {"error": "internal error"})


class ApiGate(Resource):
    """In front of every /api route: no caching of key-gated answers, CORS headers and
    preflights, the rate limit, then the Content-Type a write must carry (415)."""

    isLeaf = True

    def __init__(self, api: RegistryAPI, routes: IResource) -> None:
        super().__init__()
        self.api = api
        self.routes = routes

    def render(self, request: IRequest) -> Any:
        api = self.api
        if request.getHeader(b"x-weightless-key") is not None or request.postpath[:1] == [b"users"]:
            # key-gated answers, errors included, are for the one who asked: never cached
            request.setHeader(b"cache-control", b"no-store")
        origin = request.getHeader(b"origin")
        allowed = origin is not None and (
            "*" in api.cors_origins or origin.decode("latin-1") in api.cors_origins
        )
        if allowed:
            assert origin is not None
            request.setHeader(b"access-control-allow-origin", origin)
            request.setHeader(b"access-control-expose-headers", EXPOSED_HEADERS)
        if api.cors_origins:
            request.setHeader(b"vary", b"Origin")
        if request.method == b"OPTIONS":
            # preflights are not rate limited: a refused one only shows as a CORS error
            methods = self.allowed_methods(request)
            if not methods:
                return json_body(request, 404, {"error": "not found"})
            request.setResponseCode(204)
            request.setHeader(b"allow", methods)
            if allowed:
                request.setHeader(b"access-control-allow-methods", methods)
                request.setHeader(b"access-control-allow-headers", ALLOWED_HEADERS)
                request.setHeader(b"access-control-max-age", b"600")
            return b""
        ip = api.ip(request)
        if not api.limiter.allow(ip, api.reactor.seconds()):
            request.setHeader(b"retry-after", str(api.limiter.retry_after(ip)).encode())
            return json_body(request, 429, {"error": "Rate limit exceeded. Please slow down."})
        wanted = self.body_type(request)
        if wanted is not None:
            try:
                require_content_type(request, (wanted,))
            except ApiError as e:
                return json_body(request, e.status, {"error": str(e)})
        render: Callable[[IRequest], Any] = self.routes.render
        return render(request)

    def _path(self, request: IRequest) -> str:
        return "/" + "/".join(segment.decode("utf-8", "replace") for segment in request.postpath)

    def body_type(self, request: IRequest) -> bytes | None:
        """The Content-Type a write to this route must carry (`ROUTE_TYPES`, else
        `BODY_TYPES`); None for other methods, and for a path or method no route answers (its
        404 or 405 comes first)."""
        wanted = BODY_TYPES.get(request.method)
        if wanted is None:
            return None
        try:
            endpoint, _ = self.api.app.url_map.bind("").match(
                self._path(request), method=request.method.decode("ascii")
            )
        except HTTPException:
            return None
        return ROUTE_TYPES.get(endpoint, wanted)

    def allowed_methods(self, request: IRequest) -> bytes:
        """The methods the route at this path answers (``Allow``), OPTIONS included; empty
        for a path with no route."""
        try:
            methods = self.api.app.url_map.bind("").allowed_methods(self._path(request))
        except HTTPException:
            methods = []
        if not methods:
            return b""
        return ", ".join(sorted({*methods, "OPTIONS"})).encode()
