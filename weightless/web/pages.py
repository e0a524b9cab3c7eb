"""The registry in a browser: ``/`` (search, filters, sorting, pages), ``/torrents/{hash}``
(one entry, its model card and its repository's other versions) and
``/repos/{publisher}/{name}`` (a repository: its versions, newest first, and the newest card),
server-rendered with Jinja2 templates, plus their static files.

Thin: entries, counts, file lists and cards come from the `RegistryService` that answers
``/api`` (``get``, ``search``, ``versions``, ``metadata``, ``card``), so a page shows what
``/api`` answers.
Pages count against the per-IP rate limit like ``/api``; static files do not. Every page works
without JavaScript; ``live.js`` only refreshes the live counts and adds copy buttons."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import unquote_to_bytes, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from klein import Klein
from markupsafe import Markup
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from weightless.registry.entries import Invalid, parse_hash
from weightless.registry.parsepool import Busy
from weightless.registry.search import SORTS, parse_search
from weightless.registry.service import NotFound, RegistryService, Unavailable, Unreadable
from weightless.tracker.ratelimit import Limiter
from weightless.web import card, present
from weightless.web.clientip import ClientIP
from weightless.web.querystring import QueryStringError, query_params
from weightless.web.status import set_status
from weightless.wire.units import human_size

PAGE_SIZE = 20
MAX_PAGE = 10**9
REFRESH_SECONDS = 5  # how often live.js re-reads an entry's counts while the page is visible
CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
STATIC_TYPES = {
    ".css": b"text/css; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".svg": b"image/svg+xml",
}
SORT_LABELS = {"created_at": "Newest", "completions": "Most downloaded", "seeders": "Most seeders"}


class PageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: bytes
    version: str  # a hash of the content: ``?v=`` in the pages' links, and the ETag

    @property
    def etag(self) -> bytes:
        return f'"{self.version}"'.encode()


def load_static() -> dict[str, StaticFile]:
    """Every file of ``weightless/web/static``, read once (the package ships them)."""
    files = {}
    for item in resources.files("weightless.web").joinpath("static").iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in STATIC_TYPES:
            body = item.read_bytes()
            version = hashlib.sha256(body).hexdigest()[:16]
            files[item.name] = StaticFile(body, STATIC_TYPES[suffix], version)
    return files


class Pages:
    app = Klein()
    log = Logger()

    def __init__(
        self,
        registry: RegistryService,
        limiter: Limiter,
        client_ip: ClientIP,
        reactor: IReactorTime,
        passkeys: bool = False,
    ) -> None:
        self.registry = registry
        self.limiter = limiter
        self.client_ip = client_ip
        self.reactor = reactor
        self.passkeys = passkeys  # plain /announce is refused: magnets need the user's passkey
        self.static = load_static()
        self.env = Environment(
            loader=PackageLoader("weightless.web", "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(
            static=self._static_url,
            human_size=human_size,
            tag_list=present.tag_list,
            when=present.when,
        )

    def resource(self) -> IResource:
        return self.app.resource()

    # -- helpers

    def _static_url(self, name: str) -> str:
        return f"/static/{name}?v={self.static[name].version}"

    def _limit(self, request: IRequest) -> None:
        ip = self.client_ip.of_request(request)
        if not self.limiter.allow(ip, self.reactor.seconds()):
            request.setHeader(b"retry-after", str(self.limiter.retry_after(ip)).encode())
            raise PageError(429, "Rate limit exceeded. Please slow down.")

    def _render(self, request: IRequest, code: int, template: str, **values: Any) -> bytes:
        set_status(request, code)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"content-security-policy", CSP)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"referrer-policy", b"same-origin")
        request.setHeader(b"x-frame-options", b"DENY")
        request.setHeader(b"cache-control", b"no-cache")
        return self.env.get_template(template).render(**values).encode("utf-8")

    def _base_url(self, request: IRequest) -> str:
        return self.client_ip.base_url(request)

    # -- routes

    @app.route("/", methods=["GET"])
    async def index(self, request: IRequest) -> bytes:
        self._limit(request)
        given = query_params(request)
        page = _page_number(given.get("page"))
        wanted: dict[str, str] = {
            k: given[k] for k in ("q", "category", "publisher", "tags", "sort") if k in given
        }
        if given.get("verified") == "true":
            wanted["verified"] = "true"
        search = parse_search(
            {**wanted, "limit": str(PAGE_SIZE), "offset": str((page - 1) * PAGE_SIZE)}
        )
        entries, total = await self.registry.search(search)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        state = {k: v for k, v in wanted.items() if v and not (k == "sort" and v == SORTS[0])}

        def link(**changes: str | int | None) -> str:
            """``/?…`` with the current filters, some changed (None drops one); any change
            but the page number goes back to page 1."""
            merged: dict[str, Any] = dict(state)
            if "page" not in changes:
                merged.pop("page", None)
            for key, value in changes.items():
                if value is None or value == "" or (key == "page" and value == 1):
                    merged.pop(key, None)
                elif not (key == "sort" and value == SORTS[0]):
                    merged[key] = value
                else:
                    merged.pop(key, None)
            return "/?" + urlencode(merged) if merged else "/"

        return self._render(
            request,
            200,
            "index.html",
            entries=entries,
            total=total,
            page=page,
            pages=pages,
            page_links=_page_window(page, pages),
            first=(page - 1) * PAGE_SIZE + 1,
            search=search,
            state=state,
            link=link,
            sorts=SORT_LABELS,
        )

    @app.route("/torrents/<info_hash>", methods=["GET"])
    async def entry(self, request: IRequest, info_hash: str) -> bytes:
        self._limit(request)
        try:
            key = parse_hash(info_hash)
        except Invalid as e:
            raise PageError(400, f"Not an info hash: {e}.") from None
        base = self._base_url(request)
        announce = base + "/announce"
        try:
            entry = await self.registry.get(key, [announce])
        except NotFound:
            raise PageError(404, "No entry has this info hash.") from None
        try:
            meta = json.loads(await self.registry.metadata(key))
        except NotFound:
            meta = None  # an entry without a stored file: no file list
        publisher = entry.get("publisher")
        versions = await self.registry.versions(publisher, entry["name"]) if publisher else []
        return self._render(
            request,
            200,
            "entry.html",
            entry=entry,
            meta=meta,
            tree=present.file_tree(meta["files"]) if meta else None,
            magnet=entry["magnet"],
            v1_magnet=present.v1_magnet(entry, announce),
            get_command=present.get_command(entry, base),
            file_command=present.file_get_command(entry, meta["files"], base) if meta else None,
            passkey_announce=base + present.PASSKEY_ANNOUNCE,
            passkeys=self.passkeys,
            refresh=REFRESH_SECONDS,
            signed=bool(entry.get("signature")),
            versions=versions if len(versions) > 1 else [],
            repo_url=present.repo_url(entry),
            card=await self._card(entry["info_hash"]),
        )

    @app.route("/repos/<publisher>/<path:name>", methods=["GET"])
    async def repository(self, request: IRequest, publisher: str, name: str) -> bytes:
        self._limit(request)
        publisher, name = _repository_parts(request.path)  # a %2F in the publisher stays in it
        try:
            versions, total = await self.registry.repository(publisher, name)
        except Invalid as e:
            raise PageError(400, f"Not a repository: {e}.") from None
        if not versions:
            raise PageError(404, f"No entry of {publisher} is named {name}.")
        newest = versions[0]
        base = self._base_url(request)
        return self._render(
            request,
            200,
            "repo.html",
            publisher=publisher,
            name=name,
            versions=versions,
            total=total,
            newest=newest,
            get_command=present.repo_get_command(newest, base),
            card=await self._card(newest["info_hash"]),
        )

    async def _card(self, info_hash: str) -> Markup | None:
        """The entry's model card as HTML (``weightless.web.card``), or None when it has none:
        rendered once per card, off the reactor, and kept in the database with it."""
        try:
            html = await self.registry.card_html(info_hash, card.RENDERER, card.render)
        except NotFound:
            return None
        return Markup(html)  # markdown-it's output, raw HTML off (weightless.web.card)

    @app.route("/static/<name>", methods=["GET"])
    def static_file(self, request: IRequest, name: str) -> bytes:
        found = self.static.get(name)
        if found is None:
            self._limit(request)
            raise PageError(404, "No such file.")
        request.setHeader(b"content-type", found.content_type)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"etag", found.etag)
        # links carry ?v=<content hash>, so a versioned URL never changes content
        if query_params(request).get("v") == found.version:
            request.setHeader(b"cache-control", b"public, max-age=31536000, immutable")
        else:
            request.setHeader(b"cache-control", b"public, max-age=300")
        if found.etag in (request.getHeader(b"if-none-match") or b"").split(b", "):
            set_status(request, 304)
            return b""
        return found.body

    @app.route("/<path:rest>", methods=["GET"])
    def other(self, request: IRequest, rest: str) -> bytes:
        self._limit(request)
        folder, _, name = rest.partition("/")
        if folder == "torrents" and name and "/" not in name:
            # what the route's converter refused (a newline, say) is no hash either
            raise PageError(400, "Not an info hash.")
        raise PageError(404, "There is no page here.")

    @app.handle_errors
    def failed(self, request: IRequest, failure: Failure) -> bytes:  # type: ignore[misc]
        error = failure.value
        status, message = 500, "Something went wrong on our side."
        if isinstance(error, PageError):
            status, message = error.status, str(error)
        elif isinstance(error, Invalid):
            status, message = 400, f"{error}."
        elif isinstance(error, QueryStringError):
            status, message = 400, str(error)
        elif isinstance(error, Unreadable):
            status = 500  # a stored file the registry cannot read: the message stays general
        elif isinstance(error, Busy):
            request.setHeader(b"retry-after", str(error.retry_after).encode())
            status, message = 503, f"{error}."
        elif isinstance(error, Unavailable):
            self.log.warn("page: database unavailable: {e}", e=str(error))
            status, message = 503, "The registry's database is unavailable; try again later."
        elif isinstance(error, HTTPException):
            status, message = error.code or 500, error.description or error.name
            if isinstance(error, MethodNotAllowed) and error.valid_methods:
                request.setHeader(b"allow", ", ".join(error.valid_methods).encode())
        else:
            self.log.failure("page failed", failure)
        if status >= 500:
            message = message if status == 503 else "Something went wrong on our side."
        return self._render(request, status, "error.html", status=status, message=message)


def _repository_parts(path: bytes) -> tuple[str, str]:
    """(publisher, name) of ``/repos/{publisher}/{name}`` from the raw request path: the
    publisher is the first segment, percent-decoded (so ``Org%2FTeam`` is ``Org/Team``), the
    name all the rest. The router decodes ``%2F`` before it splits, so it cannot say this."""
    rest = path.split(b"/", 2)[2]  # b"/repos/" is what the route matched
    publisher, _, name = rest.partition(b"/")
    try:
        return unquote_to_bytes(publisher).decode(), unquote_to_bytes(name).decode()
    except UnicodeDecodeError:
        raise PageError(400, "A repository's publisher and name are UTF-8 text.") from None


def _page_number(text: str | None) -> int:
    if text is None or text == "":
        return 1
    digits = text.lstrip("0")  # any number of digits: int() refuses over 4,300 of them
    if not text.isascii() or not text.isdigit() or not digits:
        raise PageError(400, "page must be a whole number from 1.")
    return MAX_PAGE if len(digits) > len(str(MAX_PAGE)) else min(int(digits), MAX_PAGE)


def _page_window(page: int, pages: int) -> list[int | None]:
    """Page numbers to link: the first, the last and two either side of this one; None where
    numbers are left out."""
    shown = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    out: list[int | None] = []
    for n in shown:
        last = out[-1] if out else None
        if last is not None and n - last > 1:
            out.append(None)
        out.append(n)
    return out
