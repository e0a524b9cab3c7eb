"""The Klein resource tree: health, metrics and the tracker URLs (for whatever the front
protocol does not answer itself: HEAD, odd connections, in-memory tests)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from klein import Klein
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from werkzeug.exceptions import MethodNotAllowed, NotFound

from weightless.registry.store import IStore
from weightless.web.clientip import ClientIP
from weightless.web.health import PING_TIMEOUT, Health
from weightless.web.status import set_status
from weightless.web.tracker_http import Body, TrackerHTTP

HEALTH_TIMEOUT = PING_TIMEOUT


class WebApp:
    app = Klein()
    log = Logger()

    def __init__(
        self,
        http: TrackerHTTP,
        store: IStore,
        metrics: CollectorRegistry,
        client_ip: ClientIP,
        reactor: IReactorTime,
        api: IResource | None = None,
        refresh_metrics: Callable[[], Deferred[None]] | None = None,
        pages: IResource | None = None,
        clock: IReactorTime | None = None,
        swarm_store_reachable: Callable[[], bool] | None = None,
    ) -> None:
        """``clock`` paces and times /health's pings (``reactor`` unless a test gives one);
        ``swarm_store_reachable``: whether the shared swarm store (Redis) has a connection."""
        self.swarm_store_reachable = swarm_store_reachable
        self.http = http
        self.api = api  # /api/*: the registry API (weightless.web.registry_api)
        self.pages = pages  # /, /torrents/*, /static/*: the HTML pages (weightless.web.pages)
        self.store = store
        self.metrics = metrics
        self.refresh_metrics = refresh_metrics  # several workers: gather their counters first
        self.client_ip = client_ip
        self.reactor = reactor
        self.health_check = Health(store.ping, clock or reactor)

    def resource(self) -> IResource:
        """The root of the HTTP tree: the routes below, behind a check that the path and the
        host name are UTF-8 (Klein would answer an HTML 400 and log a traceback)."""
        return _Utf8Gate(self.app.resource())

    def ip(self, request: IRequest) -> str:
        return self.client_ip.of_request(request)

    @app.route("/announce", methods=["GET", "HEAD"])
    @app.route("/announce/", methods=["GET", "HEAD"], branch=False)
    def announce(self, request: IRequest) -> Body:
        return self._announce(request, None)

    @app.route("/announce/<passkey>", methods=["GET", "HEAD"])
    @app.route("/<passkey>/announce", methods=["GET", "HEAD"])
    def announce_passkey(self, request: IRequest, passkey: str) -> Body:
        return self._announce(request, passkey.encode("utf-8", "surrogateescape"))

    def _announce(self, request: IRequest, passkey: bytes | None) -> Body:
        request.setHeader(b"content-type", b"text/plain")
        if request.method == b"HEAD":
            return b""  # HEAD changes nothing: no peer added, no counter, no token taken
        return self.http.announce(passkey, _query(request), self.ip(request))

    @app.route("/scrape", methods=["GET", "HEAD"])
    @app.route("/scrape/", methods=["GET", "HEAD"], branch=False)
    def scrape(self, request: IRequest) -> Body:
        return self._scrape(request, None)

    @app.route("/scrape/<passkey>", methods=["GET", "HEAD"])
    @app.route("/<passkey>/scrape", methods=["GET", "HEAD"])
    def scrape_passkey(self, request: IRequest, passkey: str) -> Body:
        return self._scrape(request, passkey.encode("utf-8", "surrogateescape"))

    def _scrape(self, request: IRequest, passkey: bytes | None) -> Body:
        if request.method == b"HEAD":
            request.setHeader(b"content-type", b"text/plain")
            return b""
        ip = self.ip(request)
        status, body = self.http.scrape(passkey, _query(request), ip)
        set_status(request, status)
        request.setHeader(b"content-type", b"text/plain")
        if status == 429:
            request.setHeader(b"retry-after", str(self.http.retry_after(ip)).encode())
        return body

    @app.route("/api", branch=True)
    def api_branch(self, request: IRequest) -> IResource | bytes:
        if self.api is None:
            request.setResponseCode(404)
            request.setHeader(b"content-type", b"application/json")
            return b'{"error": "not found"}'
        return self.api

    @app.route("/", branch=True, methods=["GET", "HEAD"])
    def pages_branch(self, request: IRequest) -> IResource | bytes:
        """Every path no other route takes: the registry's pages, and their 404s (but under
        /api, whose answers are JSON, even for a path that its routes cannot match)."""
        if self.pages is None or _under_api(request):
            return self._not_found(request)
        return self.pages

    @app.handle_errors(NotFound)
    def no_route(self, request: IRequest, failure: Failure) -> bytes:
        """A path no route's pattern matches at all (a newline in it, say)."""
        return self._not_found(request)

    @app.handle_errors(MethodNotAllowed)
    def wrong_method(self, request: IRequest, failure: Failure) -> bytes:
        """A method no route of the path takes: 405 with ``Allow``, in the face's own form."""
        error = failure.value
        allowed = (error.valid_methods if isinstance(error, MethodNotAllowed) else None) or []
        request.setHeader(b"allow", ", ".join(sorted(allowed)).encode("ascii"))
        return _error(request, 405, "method not allowed")

    def _not_found(self, request: IRequest) -> bytes:
        return _error(request, 404, "not found")

    @app.route("/health", methods=["GET", "HEAD"])
    def health(self, request: IRequest) -> Deferred[bytes]:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")

        def answer(reason: str | None) -> bytes:
            if reason is not None:
                request.setResponseCode(503)
                return b"Database unreachable"
            if self.swarm_store_reachable is not None and not self.swarm_store_reachable():
                request.setResponseCode(503)
                return b"Swarm store unreachable"
            return b"OK"

        return self.health_check.check().addCallback(answer)

    @app.route("/metrics", methods=["GET"])
    def metrics_page(self, request: IRequest) -> bytes | Deferred[bytes]:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        if self.refresh_metrics is None:
            return self._metrics_text()
        return self.refresh_metrics().addCallback(lambda _: self._metrics_text())

    def _metrics_text(self) -> bytes:
        page: bytes = generate_latest(self.metrics)
        return page


class _Utf8Gate(Resource):
    """Answers 400 for a path (percent-decoded) or a Host that is not UTF-8; the rest goes to
    ``inner``, a leaf resource (Klein's)."""

    isLeaf = True

    def __init__(self, inner: IResource) -> None:
        super().__init__()
        self.inner = inner

    def render(self, request: IRequest) -> Any:
        try:
            for segment in (*request.prepath, *request.postpath):
                segment.decode("utf-8")
            request.getRequestHostname().decode("utf-8")
        except UnicodeDecodeError:
            return _error(request, 400, "the URL is not UTF-8")
        return self.inner.render(request)


def _error(request: IRequest, status: int, reason: str) -> bytes:
    """An error in the face's own form: JSON under /api, plain text elsewhere."""
    set_status(request, status)
    if _under_api(request):
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"error": reason}).encode()
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return reason[:1].upper().encode() + reason[1:].encode()


def _under_api(request: IRequest) -> bool:
    path: bytes = request.path
    return path == b"/api" or path.startswith(b"/api/")


def _query(request: IRequest) -> bytes:
    uri: bytes = request.uri
    return uri.partition(b"?")[2]
