"""/api/*: the registry and user endpoints of the spec, as a Klein app behind a gate that
answers CORS and the rate limit.

Thin: checks live in `weightless.registry.entries` and `.search`, data in the store, swarm
state in `LiveRegistry`. Every answer is JSON (but the .torrent download), errors included."""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import quote

from klein import Klein
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from weightless.registry.entries import (
    Entry,
    Invalid,
    Submission,
    check_signature,
    check_text,
    entry_json,
    parse_hash,
    parse_json_body,
    parse_upload,
    stored_meta,
)
from weightless.registry.live import LiveRegistry
from weightless.registry.search import BOOLEANS, Search, parse_search
from weightless.registry.store import Blocked, Conflict, IStore, StoreUnavailable
from weightless.torrent.metainfo import TorrentError
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.catalog import wire_hashes
from weightless.tracker.ratelimit import Limiter
from weightless.web.clientip import ClientIP
from weightless.web.querystring import QueryStringError, query_params
from weightless.web.status import set_status
from weightless.wire.passkey import valid_user_id

T = TypeVar("T")
# the contract of every /api endpoint for frontend developers (OpenAPI 3.1), written by hand
OPENAPI = resources.files("weightless.web").joinpath("openapi.json").read_bytes()
STORE_TIMEOUT = 5.0  # seconds before a database that does not answer is a 503
JSON = b"application/json"
MAX_TRUSTED_KEYS = 100  # per publisher
_KEY = re.compile(r"[0-9a-fA-F]{64}")
ALLOWED_HEADERS = b"Content-Type, X-Weightless-Key"
EXPOSED_HEADERS = b"X-Total-Count, Retry-After"
# what a page of another site can POST without a CORS preflight (Fetch's safelisted types)
SIMPLE_TYPES = (b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def json_body(request: IRequest, status: int, value: Any) -> bytes:
    set_status(request, status)
    request.setHeader(b"content-type", JSON)
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def params(request: IRequest) -> dict[str, str]:
    """The first value of each query-string parameter, as text (see ``querystring``). Never
    the body's: twisted.web also reads form-encoded bodies into ``request.args``."""
    try:
        return query_params(request)
    except QueryStringError as e:
        raise ApiError(400, str(e)) from None


def require_content_type(request: IRequest, accepted: tuple[bytes, ...], refused: bool) -> None:
    """415 unless the media type of Content-Type (parameters such as charset aside) is one of
    ``accepted`` or, with ``refused``, is anything but those a cross-site HTML form or a
    no-CORS fetch can send without asking (text/plain, application/x-www-form-urlencoded,
    multipart/form-data, or none)."""
    header = request.getHeader(b"content-type") or b""
    media = header.split(b";", 1)[0].strip().lower()
    if refused:
        if media and media not in SIMPLE_TYPES:
            return
    elif media in accepted:
        return
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
        store: IStore,
        live: LiveRegistry,
        pending: PendingWrites,
        limiter: Limiter,
        client_ip: ClientIP,
        reactor: IReactorTime,
        registry_key: str | None = None,
        cors_origins: Iterable[str] = (),
        timeout: float = STORE_TIMEOUT,
        clock: IReactorTime | None = None,
    ) -> None:
        """``clock`` times the store's answers (``reactor`` unless a test gives its own)."""
        self.store = store
        self.live = live
        self.pending = pending
        self.limiter = limiter
        self.client_ip = client_ip
        self.reactor = reactor
        self.registry_key = registry_key.encode("utf-8") if registry_key else None
        self.cors_origins = frozenset(cors_origins)
        self.timeout = timeout
        self.clock = clock or reactor
        self.run_in_thread: Callable[..., Deferred[Any]] = lambda fn, *args: deferToThreadPool(
            reactor,  # type: ignore[arg-type]
            reactor.getThreadPool(),  # type: ignore[attr-defined]
            fn,
            *args,
        )

    def resource(self) -> IResource:
        return ApiGate(self, self.app.resource())

    # -- helpers

    def ip(self, request: IRequest) -> str:
        return self.client_ip.of_request(request)

    def _off_reactor(self, fn: Callable[..., T], *args: Any) -> Deferred[T]:
        """``fn(*args)`` on the reactor's thread pool: parsing a .torrent (up to 16 MiB, or
        100,000 files) must never stall the announces."""
        return self.run_in_thread(fn, *args)

    def _guard(self, d: Deferred[T]) -> Deferred[T]:
        """The store's answer, or a TimeoutError (a 503) when none comes in time. Cancelling a
        store's Deferred leaves its query to finish on its own (IStore)."""
        return d.addTimeout(self.timeout, self.clock)

    def _authorize(self, request: IRequest) -> None:
        if self.registry_key is None:
            return
        given = request.getHeader(b"x-weightless-key") or b""
        if not hmac.compare_digest(given, self.registry_key):
            raise ApiError(401, "missing or wrong X-Weightless-Key")

    def _hash_param(self, request: IRequest) -> str:
        value = params(request).get("info_hash")
        if not value:
            raise ApiError(400, "info_hash is required")
        return parse_hash(value)

    def _check_writable(self, entry: Entry) -> None:
        """409 for a blocked hash, or one that already names another entry's swarm."""
        catalog = self.live.catalog
        for h in entry.hashes():
            for wire in wire_hashes(h):
                if wire in catalog.blocked:
                    raise ApiError(409, f"{h} is blocked")
                found = catalog.by_wire.get(wire)
                if found is not None and found[1].info_hash != entry.info_hash:
                    raise ApiError(409, f"{h} already belongs to entry {found[1].info_hash}")

    def _view(self, entry: Entry) -> dict[str, Any]:
        entry.completions = self.live.completions(entry.info_hash, entry.completions)
        seeders, leechers = self.live.counts(entry.info_hash)
        return entry_json(entry, seeders, leechers)

    # -- reads, shared with the HTML pages (weightless.web.pages): one query path

    async def lookup(self, info_hash: str) -> dict[str, Any] | None:
        """The RegistryEntry JSON object of the entry with this hash (v2 or v1), live counts
        included, or None."""
        entry = await self._guard(self.store.entry(info_hash))
        return None if entry is None else self._view(entry)

    async def find(self, query: Search) -> tuple[list[dict[str, Any]], int]:
        """One page of RegistryEntry objects and how many match in all (X-Total-Count)."""
        entries, total = await self._guard(self.store.search(query))
        return [self._view(e) for e in entries], total

    async def metadata(self, info_hash: str) -> bytes | None:
        """The /meta JSON body (UTF-8) of the stored .torrent: name, piece_length,
        piece_count, total_size, files; None when no file is stored. A lookup: the view was
        computed when the file was stored (or, for a file stored before that, at its first
        /meta, off the reactor, and kept)."""
        found = await self._guard(self.store.meta(info_hash))
        if found is None:
            return None
        meta, data = found
        if meta is None:
            assert data is not None
            try:
                meta = await self._off_reactor(stored_meta, data)
            except TorrentError as e:
                raise ApiError(500, f"the stored torrent cannot be read: {e}") from None
            await self._guard(self.store.save_meta(info_hash, meta))
        return meta.encode("utf-8")

    async def _register(self, submission: Submission) -> Entry:
        entry = submission.entry
        self._check_writable(entry)
        if submission.signatures:
            await self._sign(submission)
        completions = await self._guard(
            self.store.upsert(entry, submission.torrent_data, submission.meta)
        )
        self.live.upserted(entry.info_hash, entry.v1_info_hash, completions)
        return entry

    async def _sign(self, submission: Submission) -> None:
        """Give the entry its signature, checked against all its hashes: those of the file,
        or the ones posted with the stored v1_info_hash added (an entry keyed by its v2 hash
        keeps its v1 hash across posts, and the signature must cover it). Of a file's several
        signatures, the first by a key trusted for the publisher, else the first."""
        entry = submission.entry
        posted_v2 = submission.torrent_data is None and len(entry.info_hash) == 64
        if posted_v2 and entry.v1_info_hash is None:
            stored = await self._guard(self.store.entry(entry.info_hash))
            if stored is not None and stored.info_hash == entry.info_hash:
                entry.v1_info_hash = stored.v1_info_hash
        chosen = submission.signatures[0]
        if len(submission.signatures) > 1 and entry.publisher:
            trusted: list[str] = await self._guard(self.store.trusted_keys(entry.publisher))
            chosen = next((s for s in submission.signatures if s.public_key_hex in trusted), chosen)
        check_signature(entry, chosen)

    # -- routes

    @app.route("/registry", methods=["GET"])
    async def get_entry(self, request: IRequest) -> bytes:
        entry = await self.lookup(self._hash_param(request))
        if entry is None:
            raise ApiError(404, "info_hash not found")
        return json_body(request, 200, entry)

    @app.route("/registry/search", methods=["GET"])
    async def search(self, request: IRequest) -> bytes:
        entries, total = await self.find(parse_search(params(request)))
        request.setHeader(b"x-total-count", str(total).encode())
        return json_body(request, 200, entries)

    @app.route("/registry", methods=["POST"])
    async def post_entry(self, request: IRequest) -> bytes:
        self._authorize(request)
        require_content_type(request, (JSON,), refused=False)
        await self._register(await self._off_reactor(parse_json_body, request.content.read()))
        return json_body(request, 201, {"status": "created"})

    @app.route("/registry/torrent", methods=["POST"])
    async def upload(self, request: IRequest) -> bytes:
        self._authorize(request)
        require_content_type(request, (b"application/x-bittorrent",), refused=True)
        body = request.content.read()
        entry = await self._register(await self._off_reactor(parse_upload, body, params(request)))
        answer = {"status": "created", "info_hash": entry.info_hash}
        if entry.v1_info_hash:
            answer["v1_info_hash"] = entry.v1_info_hash
        return json_body(request, 201, answer)

    @app.route("/registry", methods=["DELETE"])
    async def delete_entry(self, request: IRequest) -> bytes:
        self._authorize(request)
        info_hash = self._hash_param(request)
        reason = check_text(params(request).get("reason", ""), "reason")
        hashes = await self._guard(self.store.takedown(info_hash, reason))
        self.live.taken_down(hashes)
        return json_body(request, 200, {"status": "deleted"})

    @app.route("/registry/torrent", methods=["GET"])
    async def download(self, request: IRequest) -> bytes:
        found = await self._guard(self.store.torrent(self._hash_param(request)))
        if found is None:
            raise ApiError(404, "no torrent file stored for this info_hash")
        name, data = found
        request.setHeader(b"content-type", b"application/x-bittorrent")
        request.setHeader(b"content-disposition", content_disposition(name))
        return data

    @app.route("/registry/meta", methods=["GET"])
    async def meta(self, request: IRequest) -> bytes:
        meta = await self.metadata(self._hash_param(request))
        if meta is None:
            raise ApiError(404, "no torrent file stored for this info_hash")
        set_status(request, 200)
        request.setHeader(b"content-type", JSON)
        return meta

    @app.route("/openapi.json", methods=["GET"])
    def openapi(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", JSON)
        return OPENAPI

    @app.route("/publishers/<path:publisher>", methods=["GET"])
    async def get_publisher(self, request: IRequest, publisher: str) -> bytes:
        publisher = check_text(publisher, "publisher")
        keys = await self._guard(self.store.trusted_keys(publisher))
        return json_body(request, 200, {"publisher": publisher, "keys": keys})

    @app.route("/publishers/<path:publisher>", methods=["PUT"])
    async def put_publisher(self, request: IRequest, publisher: str) -> bytes:
        self._authorize(request)
        publisher = check_text(publisher, "publisher")
        keys = parse_trusted_keys(request.content.read())
        await self._guard(self.store.set_trusted_keys(publisher, keys))
        return json_body(request, 200, {"publisher": publisher, "keys": keys})

    @app.route("/registry/verify", methods=["POST"])
    async def verify(self, request: IRequest) -> bytes:
        self._authorize(request)
        info_hash = self._hash_param(request)
        mark = params(request).get("verified")
        if mark not in BOOLEANS:
            raise ApiError(400, "verified must be true or false")
        entry = await self._guard(self.store.set_operator_mark(info_hash, BOOLEANS[mark]))
        if entry is None:
            raise ApiError(404, "info_hash not found")
        return json_body(request, 200, self._view(entry))

    @app.route("/users/<user_id>", methods=["GET"])
    async def user(self, request: IRequest, user_id: str) -> bytes:
        self._authorize(request)
        if not valid_user_id(user_id):
            raise ApiError(404, "unknown user")
        stored = await self._guard(self.store.user(user_id))
        queued = self.pending.traffic.get(user_id)
        if stored is None and queued is None:
            raise ApiError(404, "unknown user")
        up, down = stored or (0, 0)
        if queued is not None:
            up, down = up + queued[0], down + queued[1]
        return json_body(request, 200, {"user_id": user_id, "uploaded": up, "downloaded": down})

    @app.handle_errors
    def failed(self, request: IRequest, failure: Failure) -> bytes:  # type: ignore[misc]
        error = failure.value
        if isinstance(error, ApiError):
            return json_body(request, error.status, {"error": str(error)})
        if isinstance(error, Invalid):
            return json_body(request, 400, {"error": str(error)})
        if isinstance(error, Blocked):
            return json_body(request, 409, {"error": f"{error} is blocked"})
        if isinstance(error, Conflict):
            return json_body(request, 409, {"error": "a hash of this entry belongs to another"})
        if isinstance(error, StoreUnavailable | defer.TimeoutError):
            self.log.warn("registry: database unavailable: {e}", e=str(error))
            return json_body(request, 503, {"error": "database unavailable, try again later"})
        if isinstance(error, HTTPException):
            if isinstance(error, MethodNotAllowed) and error.valid_methods:
                request.setHeader(b"allow", ", ".join(error.valid_methods).encode())
            return json_body(request, error.code or 500, {"error": error.name.lower()})
        self.log.failure("registry request failed", failure)
        return json_body(request, 500, {"error": "internal error"})


def parse_trusted_keys(body: bytes) -> list[str]:
    """The body of PUT /api/publishers/{publisher}: {"keys": ["<64 hex>", ...]}, sorted and
    without repeats; [] trusts no key."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise Invalid("invalid JSON body") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise Invalid('the body must be {"keys": ["<64 hex Ed25519 public key>", ...]}')
    keys = data["keys"]
    if len(keys) > MAX_TRUSTED_KEYS:
        raise Invalid(f"at most {MAX_TRUSTED_KEYS} keys per publisher")
    for key in keys:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise Invalid("each key must be 64 hex characters (an Ed25519 public key)")
    return sorted({key.lower() for key in keys})


class ApiGate(Resource):
    """In front of every /api route: CORS headers and preflights, then the rate limit."""

    isLeaf = True

    def __init__(self, api: RegistryAPI, routes: IResource) -> None:
        super().__init__()
        self.api = api
        self.routes = routes

    def render(self, request: IRequest) -> Any:
        api = self.api
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
        render: Callable[[IRequest], Any] = self.routes.render
        return render(request)

    def allowed_methods(self, request: IRequest) -> bytes:
        """The methods the route at this path answers (``Allow``), OPTIONS included; empty
        for a path with no route."""
        path = "/" + "/".join(segment.decode("utf-8", "replace") for segment in request.postpath)
        try:
            methods = self.api.app.url_map.bind("").allowed_methods(path)
        except HTTPException:
            methods = []
        if not methods:
            return b""
        return ", ".join(sorted({*methods, "OPTIONS"})).encode()
