"""The registry's HTML pages over real HTTP on loopback, once per backend: what a person sees
on ``/`` and ``/torrents/{hash}``, that entries' text stays text, the security and caching
headers, the rate limit, and the 400/404 pages. (Chromium drives them in
tests/integration/test_browser.py.)"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_twisted
from bs4 import BeautifulSoup
from registry_kit import (
    Response,
    Server,
    Start,
    make_folder_torrent,
    raw_sql,
)
from twisted.internet import defer, threads

from weightless.web.pages import PAGE_SIZE, Pages

DASH = "\u2013"  # the en dash of "1-20 of 45"
NEXT = "Next \u203a"
EVIL = '<script>alert("owned")</script><img src=x onerror=alert(1)>'


def v2(n: int | str) -> str:
    return hashlib.sha256(f"page {n}".encode()).hexdigest()


def v1(n: int | str) -> str:
    return hashlib.sha1(f"page {n}".encode()).hexdigest()


async def register(server: Server, n: int | str, **fields: Any) -> None:
    body = {"info_hash": v2(n), "v1_info_hash": v1(n), "name": f"entry {n}", **fields}
    r = await server.post_json(body)
    assert r.status == 201, r.body


def html(response: Response, status: int = 200) -> BeautifulSoup:
    assert response.status == status, (response.status, response.body[:500])
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    return BeautifulSoup(response.body, "html.parser")


def rows(page: BeautifulSoup) -> list[str]:
    """The names of the entries listed, in order."""
    return [row.select_one("a.entry-link").get_text() for row in page.select("tr.entry")]


def link_query(href: str) -> dict[str, list[str]]:
    parts = urlsplit(href)
    assert parts.path == "/" and not parts.netloc, href
    return parse_qs(parts.query)


# -- /


@pytest_twisted.ensureDeferred
async def test_index_rows_show_what_a_person_needs(server: Server, store_url: str) -> None:
    await register(
        server,
        1,
        name="Llama Weights v4",
        publisher="meta",
        license="Apache-2.0",
        size=236936515,
        category="models",
        tags="llm,weights",
    )
    await register(server, 2, name="Bare entry")
    raw_sql(store_url, "UPDATE registry SET verified = ? WHERE info_hash = ?", (True, v2(1)))
    await server.announce(bytes.fromhex(v1(1)), 6881, left=0)
    await server.announce(bytes.fromhex(v2(1))[:20], 6882, left=10)
    await server.announce(bytes.fromhex(v1(1)), 6883, left=10)

    page = html(await server.get("/"))
    assert rows(page) == ["Bare entry", "Llama Weights v4"]  # newest first
    assert page.select_one("#count").get_text() == f"1{DASH}2 of 2 entries"
    row = page.select("tr.entry")[1]
    assert row.select_one("td.name a")["href"] == f"/torrents/{v2(1)}"
    assert row.select_one(".mark.verified") is not None
    assert row.select_one(".mark.signed") is None
    cells = {td["data-label"]: td for td in row.select("td[data-label]")}
    assert cells["Size"].get_text(strip=True) == "226.0 MiB"
    assert cells["Size"]["title"] == "236,936,515 bytes"
    assert cells["License"].get_text(strip=True) == "Apache-2.0"
    assert (row.select_one(".seeders").get_text(), row.select_one(".leechers").get_text()) == (
        "1",
        "2",
    )
    assert (cells["seeder"].get_text(), cells["leechers"].get_text()) == ("1", "2")
    assert link_query(cells["by"].a["href"]) == {"publisher": ["meta"]}
    assert link_query(cells["in"].a["href"]) == {"category": ["models"]}
    tags = row.select("a.tag")
    assert [(t.get_text(), link_query(t["href"])) for t in tags] == [
        ("llm", {"tags": ["llm"]}),
        ("weights", {"tags": ["weights"]}),
    ]
    bare = {
        td["data-label"]: td.get_text(strip=True)
        for td in page.select("tr.entry")[0].select("td[data-label]")
    }
    assert bare["Size"] == "—" and bare["by"] == "—"
    assert page.select_one(".pager") is None


@pytest_twisted.ensureDeferred
async def test_filters_sort_and_search_follow_the_api(server: Server) -> None:
    await register(
        server, "a", name="Alpha model", category="models", publisher="lab", tags="llm,fp16"
    )
    await register(
        server, "b", name="Beta data", category="datasets", publisher="lab", tags="climate"
    )
    await register(
        server, "c", name="Gamma model", category="models", publisher="other", tags="llm"
    )
    for port in (7001, 7002):
        await server.announce(bytes.fromhex(v1("a")), port, left=0)
    from weightless.registry.live import CountsPublisher

    await CountsPublisher(server.live, server.store, server.stack.reactor).publish()

    page = html(await server.get("/", category="models"))
    assert rows(page) == ["Gamma model", "Alpha model"]
    chip = page.select_one("a.chip")
    assert chip.get_text(" ", strip=True).startswith("category: models")
    assert chip["href"] == "/"  # removing the only filter
    # the search form keeps the filters that are on
    hidden = {i["name"]: i["value"] for i in page.select("form.search input[type=hidden]")}
    assert hidden == {"category": "models"}

    page = html(await server.get("/", category="models", publisher="lab"))
    assert rows(page) == ["Alpha model"]
    assert rows(html(await server.get("/", tags="LLM"))) == ["Gamma model", "Alpha model"]
    assert rows(html(await server.get("/", q="MODEL"))) == ["Gamma model", "Alpha model"]
    page = html(await server.get("/", q="nothing like it"))
    assert rows(page) == [] and page.select_one("#count").get_text() == "No entries match."

    page = html(await server.get("/", sort="seeders"))
    assert rows(page)[0] == "Alpha model"
    assert page.select_one(".sort strong").get_text() == "Most seeders"
    sort_links = {a.get_text(): link_query(a["href"]) for a in page.select(".sort a")}
    assert sort_links == {"Newest": {}, "Most downloaded": {"sort": ["completions"]}}

    # the page asks the same search as the API, so it shows the same entries
    api = await server.get("/api/registry/search", category="models", q="a")
    assert [e["name"] for e in api.json()] == rows(
        html(await server.get("/", category="models", q="a"))
    )


@pytest_twisted.ensureDeferred
async def test_pages_from_the_total_count(server: Server) -> None:
    total = 2 * PAGE_SIZE + 5
    for n in range(total):
        await register(server, n, category="many")
    first = html(await server.get("/", category="many"))
    assert rows(first) == [f"entry {n}" for n in range(total - 1, total - 1 - PAGE_SIZE, -1)]
    assert first.select_one("#count").get_text() == f"1{DASH}{PAGE_SIZE} of {total} entries"
    pager = first.select_one("nav.pager")
    assert [x.get_text() for x in pager.select("a, strong")] == ["1", "2", "3", NEXT]
    next_href = pager.select_one("a[rel=next]")["href"]
    assert link_query(next_href) == {"category": ["many"], "page": ["2"]}

    last = html(await server.get("/", category="many", page="3"))
    assert rows(last) == [f"entry {n}" for n in range(4, -1, -1)]
    assert (
        last.select_one("#count").get_text()
        == f"{2 * PAGE_SIZE + 1}{DASH}{total} of {total} entries"
    )
    assert last.select_one("nav.pager a[rel=next]") is None
    assert link_query(last.select_one("nav.pager a[rel=prev]")["href"]) == {
        "category": ["many"],
        "page": ["2"],
    }
    # every entry once over the three pages
    seen = []
    for n in (1, 2, 3):
        seen += rows(html(await server.get("/", category="many", page=str(n))))
    assert sorted(seen) == sorted(f"entry {n}" for n in range(total))

    beyond = html(await server.get("/", category="many", page="9"))
    assert (
        rows(beyond) == [] and "No entries on page 9 of 3" in beyond.select_one("#count").get_text()
    )


@pytest.mark.parametrize(
    "query",
    [
        {"page": "0"},
        {"page": "-1"},
        {"page": "two"},
        {"page": "\uff11"},  # a fullwidth digit one: isdigit(), but not ASCII
        {"page": "0" * 5000},
        {"sort": "name"},
        {"q": "a\x00b"},
    ],
)
@pytest_twisted.ensureDeferred
async def test_malformed_index_queries_get_a_400_page(
    server: Server, query: dict[str, str]
) -> None:
    page = html(await server.get("/", **query), 400)
    assert page.select_one(".error h1").get_text() == "400"
    assert page.select_one(".error p").get_text()


@pytest.mark.parametrize("digits", [20, 5000])
@pytest_twisted.ensureDeferred
async def test_a_page_number_of_any_length_is_a_page(server: Server, digits: int) -> None:
    """A page past the end, however many digits it has, is a page (with no rows), never a 500."""
    await register(server, 1)
    page = html(await server.get("/", page="9" * digits))
    assert rows(page) == []


@pytest.mark.parametrize("target", ["/?q=%FF", "/?%C3=x", "/?q=%ED%A0%80"])
@pytest_twisted.ensureDeferred
async def test_query_strings_that_are_not_utf8_get_a_400_page(server: Server, target: str) -> None:
    page = html(await server.get(target), 400)
    assert page.select_one(".error h1").get_text() == "400"
    assert "UTF-8" in page.select_one(".error p").get_text()


# -- /torrents/{info_hash}


@pytest_twisted.ensureDeferred
async def test_entry_page_shows_every_field_files_and_links(server: Server, tmp_path: Path) -> None:
    files = {f"shards/part-{i:02d}.bin": 1000 + i for i in range(12)}
    files |= {"config.json": 321, "tokenizer/vocab.txt": 2048}
    torrent = make_folder_torrent(tmp_path, "tiny-model", files)
    r = await server.request(
        "POST",
        "/api/registry/torrent",
        torrent,
        {"Content-Type": "application/x-bittorrent"},
        description="Line one\n<b>not bold</b>",
        publisher="weightless-lab",
        license="MIT",
        category="models",
        tags="llm,demo",
    )
    assert r.status == 201, r.body
    created = r.json()
    v2_hash, v1_hash = created["info_hash"], created["v1_info_hash"]
    await server.announce(bytes.fromhex(v1_hash), 6881, left=0)

    for key in (v2_hash, v1_hash, v2_hash.upper()):
        page = html(await server.get(f"/torrents/{key}"))
        assert page.select_one("h1.entry-name").get_text() == "tiny-model"
    assert page.title is not None and page.title.get_text() == "tiny-model · Weightless"
    assert page.select_one(".description").get_text() == "Line one\n<b>not bold</b>"
    live = {el["data-live"]: el.get_text() for el in page.select("[data-live]")}
    assert live == {"seeders": "1", "leechers": "0", "completions": "0"}
    swarm = [div.get_text(" ", strip=True) for div in page.select("[data-live-hash] > div")]
    assert swarm == ["1 seeder", "0 leechers", "0 downloads"]
    assert page.select_one("[data-live-hash]")["data-live-hash"] == v2_hash

    details = {
        dt.get_text(strip=True): dt.find_next_sibling("dd").get_text(" ", strip=True)
        for dt in page.select(".details dt")
    }
    total = sum(files.values())
    assert details["Info hash (v2)"] == v2_hash
    assert details["v1 info hash"] == v1_hash
    assert details["Publisher"] == "weightless-lab"
    assert details["Category"] == "models"
    assert details["License"] == "MIT"
    assert details["Size"] == f"{total / 1024:.1f} KiB ({total:,} bytes)"
    assert details["Tags"] == "llm demo"
    assert details["Verified"] == "no" and details["Signature"] == "none"

    tree = page.select_one("section.files")
    assert f"{len(files)} files" in tree.p.get_text()
    folders = {
        s.select_one(".fname").get_text(): s.select_one(".fsize").get_text()
        for s in tree.select("summary")
    }
    shards = sum(v for k, v in files.items() if k.startswith("shards/"))
    assert folders == {
        "shards/": f"{shards / 1024:.1f} KiB · 12 files",
        "tokenizer/": "2.0 KiB · 1 file",
    }
    # few files: every folder open (a big torrent's are closed: see test_browser.py)
    assert all(d.has_attr("open") for d in tree.select("details"))
    listed = [li.select_one(".fname").get_text() for li in tree.select("li.file")]
    assert sorted(listed) == sorted(p.rpartition("/")[2] for p in files)
    top_files = [li.select_one(".fname").get_text() for li in tree.select(":scope > ul > li.file")]
    assert top_files == ["config.json"]

    base = server.url
    magnet = page.select_one("#magnet-link")["href"]
    assert magnet == page.select_one("#magnet")["value"]
    assert magnet.startswith(f"magnet:?xt=urn:btih:{v1_hash}&xt=urn:btmh:1220{v2_hash}&dn=")
    assert parse_qs(urlsplit(magnet).query)["tr"] == [f"{base}/announce"]
    old = page.select_one("#v1-magnet-link")["href"]
    assert "btmh" not in old and f"xt=urn:btih:{v1_hash}" in old
    assert page.select_one("#torrent-link")["href"] == f"/api/registry/torrent?info_hash={v2_hash}"
    command = page.select_one("#get-command")["value"]
    assert command == f"weightless get {v2_hash} --tracker {base}"
    one_file = page.select_one("#file-command")["value"]
    assert one_file == f"weightless get {v2_hash} config.json --tracker {base}"
    download = await server.get(page.select_one("#torrent-link")["href"])
    assert download.body == torrent


@pytest_twisted.ensureDeferred
async def test_entry_without_a_torrent_file(server: Server) -> None:
    await register(server, "json", size=5)
    page = html(await server.get(f"/torrents/{v2('json')}"))
    assert page.select_one("#torrent-link") is None
    assert "No .torrent file is stored" in page.select_one("section.files").get_text()
    assert page.select_one("#magnet-link") is not None


@pytest_twisted.ensureDeferred
async def test_v1_only_entry_has_one_btih_magnet(server: Server) -> None:
    r = await server.post_json({"info_hash": v1("old"), "name": "v1 only"})
    assert r.status == 201
    page = html(await server.get(f"/torrents/{v1('old')}"))
    magnet = page.select_one("#magnet-link")["href"]
    assert parse_qs(urlsplit(magnet).query)["xt"] == [f"urn:btih:{v1('old')}"]
    assert page.select_one("#v1-magnet-link") is None
    details = [dt.get_text(strip=True) for dt in page.select(".details dt")]
    assert "Info hash (v1)" in details


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/torrents/{'0' * 64}", 404),
        (f"/torrents/{'0' * 40}", 404),
        ("/torrents/xyz", 400),
        (f"/torrents/{'0' * 63}", 400),
        (f"/torrents/{'g' * 64}", 400),
        ("/torrents/%00", 400),
        ("/torrents/", 404),
        (f"/torrents/{'0' * 64}/more", 404),
        ("/no/such/page", 404),
    ],
)
@pytest_twisted.ensureDeferred
async def test_unknown_and_malformed_hashes(server: Server, path: str, status: int) -> None:
    page = html(await server.get(path), status)
    assert page.select_one(".error h1").get_text() == str(status)
    assert page.select_one(".error a")["href"] == "/"


# -- untrusted text


@pytest_twisted.ensureDeferred
async def test_markup_in_entries_shows_as_text(server: Server) -> None:
    await register(
        server,
        "evil",
        name=EVIL,
        description=EVIL,
        publisher='"><script>alert(2)</script>',
        category="</td><script>alert(3)</script>",
        tags="<b>bold</b>,x",
        license="<i>MIT</i>",
    )
    for path in ("/", f"/torrents/{v2('evil')}"):
        r = await server.get(path)
        page = html(r)
        scripts = page.find_all("script")
        assert [s.get("src", "").split("?")[0] for s in scripts] == ["/static/live.js"]
        assert page.find("img", src="x") is None and page.find("b") is None
        assert b"<script>alert" not in r.body
        assert EVIL in page.get_text()
    listed = html(await server.get("/")).select_one("tr.entry a.entry-link")
    assert listed.get_text() == EVIL
    page = html(await server.get("/", publisher='"><script>alert(2)</script>'))
    assert rows(page) == [EVIL]


def test_signed_and_verified_marks_follow_the_fields(tmp_path: Path) -> None:
    """The signed and verified marks on the pages come from the entries' ``publisher_key``,
    ``signature`` and ``verified`` fields, whoever sets them."""
    from twisted.internet import reactor

    from weightless.tracker.ratelimit import RateLimiter
    from weightless.web.clientip import ClientIP

    pages = Pages(None, RateLimiter(0, 10), ClientIP(), reactor)  # type: ignore[arg-type]
    marks = pages.env.get_template("marks.html").module.marks  # type: ignore[attr-defined]
    signed = {"verified": False, "signature": "ab" * 64, "publisher_key": "cd" * 32}
    both = {**signed, "verified": True}
    plain = {"verified": False}
    assert "signed" in str(marks(signed)) and "verified" not in str(marks(signed))
    assert "signed" in str(marks(both)) and "✔ verified" in str(marks(both))
    assert str(marks(plain)).strip() == ""
    assert "cd" * 32 in str(marks(signed))


# -- headers, static files, rate limit


@pytest_twisted.ensureDeferred
async def test_security_headers(server: Server) -> None:
    await register(server, 1)
    for path in ("/", f"/torrents/{v2(1)}", "/torrents/nope", "/nothing"):
        r = await server.get(path)
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-cache"
        # nothing is loaded from another host
        page = BeautifulSoup(r.body, "html.parser")
        for tag, attr in (("script", "src"), ("link", "href"), ("img", "src")):
            for el in page.find_all(tag):
                assert el[attr].startswith("/static/"), el


@pytest_twisted.ensureDeferred
async def test_static_files_are_cached_and_revalidated(server: Server) -> None:
    page = html(await server.get("/"))
    css = page.select_one("link[rel=stylesheet]")["href"]
    js = page.select_one("script")["src"]
    icon = page.select_one("link[rel=icon]")["href"]
    for href, ctype in (
        (css, "text/css; charset=utf-8"),
        (js, "text/javascript; charset=utf-8"),
        (icon, "image/svg+xml"),
    ):
        r = await server.get(href)
        assert r.status == 200 and r.headers["content-type"] == ctype
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        etag = r.headers["etag"]
        unversioned = await server.get(href.split("?")[0])
        assert unversioned.body == r.body
        assert unversioned.headers["cache-control"] == "public, max-age=300"
        again = await server.request("GET", href, headers={"If-None-Match": etag})
        assert again.status == 304 and again.body == b""
        stale = await server.request("GET", href, headers={"If-None-Match": '"old"'})
        assert stale.status == 200 and stale.body == r.body
    for path in ("/static/nothing.css", "/static/../pages.py", "/static/%2e%2e%2fpages.py"):
        r = await server.get(path)
        assert r.status == 404 and b"import" not in r.body


@pytest_twisted.ensureDeferred
async def test_pages_count_against_the_rate_limit_static_files_do_not(start: Start) -> None:
    server = await start(rate_limit=0.001)  # burst 10, and no refill within the test
    page = html(await server.get("/"))
    css = page.select_one("link[rel=stylesheet]")["href"]
    for _ in range(20):
        assert (await server.get(css)).status == 200
    statuses = [(await server.get("/")).status for _ in range(9)]
    assert statuses == [200] * 9  # the first page above took the tenth token
    limited = await server.get(f"/torrents/{v2(1)}")
    page = html(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert "Rate limit exceeded" in page.get_text()
    # the same bucket as /api
    assert (await server.get("/api/registry/search")).status == 429
    assert (await server.get(css)).status == 200


@pytest_twisted.ensureDeferred
async def test_head_and_other_methods(server: Server) -> None:
    r = await server.request("HEAD", "/")
    assert r.status == 200 and r.body == b""
    r = await server.request("POST", "/", b"x")
    assert r.status == 405


@pytest_twisted.ensureDeferred
async def test_links_use_the_host_the_browser_used(start: Start) -> None:
    server = await start()
    await register(server, 1)
    r = await server.request("GET", f"/torrents/{v2(1)}", headers={"Host": "models.example:8443"})
    magnet = html(r).select_one("#magnet")["value"]
    assert parse_qs(urlsplit(magnet).query)["tr"] == ["http://models.example:8443/announce"]
    # a Host that is not a host never reaches a page: the listener refuses it (RFC 9112 3.2)
    r = await server.request("GET", f"/torrents/{v2(1)}", headers={"Host": 'x"><script>'})
    assert r.status == 400
    assert b"<script>" not in r.body


@pytest_twisted.ensureDeferred
async def test_links_behind_a_trusted_proxy(start: Start) -> None:
    server = await start(trusted_proxies=("127.0.0.1/32",))
    await register(server, 1)
    forwarded = {"X-Forwarded-Host": "models.example", "X-Forwarded-Proto": "https"}
    page = html(await server.request("GET", f"/torrents/{v2(1)}", headers=forwarded))
    tr = parse_qs(urlsplit(page.select_one("#magnet")["value"]).query)["tr"]
    assert tr == ["https://models.example/announce"]
    command = page.select_one("#get-command")["value"]
    assert command.endswith("--tracker https://models.example")
    # from anyone else the headers are the client's word, and ignored
    plain = await start()
    page = html(await plain.request("GET", f"/torrents/{v2(1)}", headers=forwarded))
    tr = parse_qs(urlsplit(page.select_one("#magnet")["value"]).query)["tr"]
    assert tr == [f"{plain.url}/announce"]


@pytest_twisted.ensureDeferred
async def test_passkey_trackers_say_so(start: Start) -> None:
    server = await start(secret=b"s3cret")
    await register(server, 1)
    page = html(await server.get(f"/torrents/{v2(1)}"))
    hint = page.select_one("#passkey-hint").get_text(" ", strip=True)
    # the form clients derive a scrape URL from (they replace a last segment "announce")
    assert f"{server.url}/YOUR_PASSKEY/announce" in hint
    assert "/announce/YOUR_PASSKEY" not in page.get_text()
    plain = await start()
    assert "PASSKEY" not in html(await plain.get(f"/torrents/{v2(1)}")).get_text()


def test_templates_static_files_and_the_document_ship_in_the_package() -> None:
    """Every file the pages read is named by pyproject's package-data (else an installed
    tracker would fail where a checkout works)."""
    import fnmatch

    import tomllib

    root = Path(__file__).resolve().parents[2]
    with open(root / "pyproject.toml", "rb") as f:
        globs = tomllib.load(f)["tool"]["setuptools"]["package-data"]["weightless"]
    package = root / "weightless"
    needed = [
        p.relative_to(package).as_posix()
        for folder in ("web/templates", "web/static")
        for p in (package / folder).iterdir()
    ] + ["web/openapi.json"]
    assert len(needed) >= 9
    for name in needed:
        assert any(fnmatch.fnmatch(name, g) for g in globs), name


@pytest_twisted.ensureDeferred
async def test_the_verified_only_filter(server: Server, store_url: str) -> None:
    """The page offers a "verified only" link that narrows the list as search?verified=true
    does, and a chip that removes it."""
    await register(server, "plain")
    await register(server, "marked")
    raw_sql(store_url, "UPDATE registry SET verified = ? WHERE info_hash = ?", (True, v2("marked")))
    page = html(await server.get("/"))
    links = [a for a in page.select(".filters a") if a.get_text() == "verified only"]
    [link] = links
    assert link_query(link["href"]) == {"verified": ["true"]}
    page = html(await server.get(link["href"]))
    assert rows(page) == ["entry marked"]
    assert page.select_one("a.chip").get_text(" ", strip=True).startswith("verified only")


# -- repositories, versions and model cards

HOSTILE_CARD = """---
license: mit
tags: [x]
---
# Tiny model <script>alert("title")</script>

<script>alert("block")</script>
<img src="https://evil.example/pixel.png" onerror="alert(1)">
<div onclick="alert(2)" style="background:url(https://evil.example/bg.png)">raw html</div>

Inline <b onmouseover="alert(3)">bold</b> and <iframe src="https://evil.example/"></iframe>.

[js](javascript:alert(4)) [JS](JaVaScRiPt:alert(5)) [ent](&#106;avascript:alert(6))
[data](data:text/html;base64,PHNjcmlwdD5hbGVydCg3KTwvc2NyaXB0Pg==) [vb](vbscript:msgbox(8))
<javascript:alert(9)> [ref js][evil] [ref ok][good] [rel](config.json) [web](https://example.com/x)

![remote](https://evil.example/remote.png) ![local](chart.png)
[![badge](https://evil.example/badge.svg)](https://ci.example/)

[good]: https://example.com/ref

[evil]: javascript:alert(10)
"""


async def put_card(server: Server, info_hash: str, text: str) -> None:
    r = await server.request(
        "PUT",
        "/api/registry/card",
        text.encode(),
        {"Content-Type": "text/markdown"},
        info_hash=info_hash,
    )
    assert r.status in (200, 201, 204), r.body


async def versions_of(server: Server, store_url: str) -> None:
    """acme/llm at v1, v2, v3 (registered in that order, a day apart), other/llm at v9."""
    for n, (publisher, version) in enumerate(
        [("acme", "v1"), ("acme", "v2"), ("acme", "v3"), ("other", "v9")]
    ):
        await register(server, version, name="llm", publisher=publisher, version=version)
        when = 1_780_000_000 + n * 86_400
        raw_sql(
            store_url, "UPDATE registry SET created_at = ? WHERE info_hash = ?", (when, v2(version))
        )


def listed_versions(page: BeautifulSoup) -> list[str]:
    return [a.get_text() for a in page.select(".versions a.version-link")]


@pytest_twisted.ensureDeferred
async def test_entry_page_shows_version_created_at_and_the_other_versions(
    server: Server, store_url: str
) -> None:
    await versions_of(server, store_url)
    page = html(await server.get(f"/torrents/{v2('v2')}"))
    line = page.select_one(".repo-line")
    assert line.select_one(".version-label").get_text() == "v2"
    assert line.select_one("a.repo-link")["href"] == "/repos/acme/llm"
    assert line.time["datetime"] == "2026-05-29T20:26:40Z"
    assert line.time.get_text() == "2026-05-29 20:26 UTC"
    details = {
        dt.get_text(strip=True): dt.find_next_sibling("dd").get_text(" ", strip=True)
        for dt in page.select(".details dt")
    }
    assert details["Version"] == "v2" and details["Registered"] == "2026-05-29 20:26 UTC"
    assert listed_versions(page) == ["v3", "v2", "v1"]  # newest first, only acme's
    current = page.select_one(".versions li.current a")
    assert current.get_text() == "v2" and current["aria-current"] == "page"
    hrefs = [a["href"] for a in page.select(".versions a.version-link")]
    assert hrefs == [f"/torrents/{v2(v)}" for v in ("v3", "v2", "v1")]
    assert page.select_one(".versions li .mark.latest").find_parent("li").a.get_text() == "v3"
    listed = html(await server.get("/")).select("tr.entry")
    assert [r.select_one(".version-tag").get_text() for r in listed] == ["v9", "v3", "v2", "v1"]
    lone = html(await server.get(f"/torrents/{v2('v9')}"))  # other/llm: one version
    assert lone.select_one(".versions") is None
    assert lone.select_one("a.repo-link")["href"] == "/repos/other/llm"


@pytest_twisted.ensureDeferred
async def test_an_entry_without_publisher_or_version(server: Server) -> None:
    await register(server, "bare")
    page = html(await server.get(f"/torrents/{v2('bare')}"))
    assert page.select_one("a.repo-link") is None and page.select_one(".versions") is None
    assert page.select_one(".repo-line time") is not None  # when it was registered
    assert page.select_one("section.card") is None  # no card: no section


@pytest_twisted.ensureDeferred
async def test_repo_page_lists_versions_newest_first_with_the_newest_card(
    server: Server, store_url: str
) -> None:
    await versions_of(server, store_url)
    await put_card(server, v2("v1"), "# Old card\n")
    await put_card(server, v2("v3"), "---\nlicense: mit\n---\n# New card\n\nUse *it*.\n")
    page = html(await server.get("/repos/acme/llm"))
    assert page.title is not None and page.title.get_text() == "acme/llm · Weightless"
    assert listed_versions(page) == ["v3", "v2", "v1"]
    card = page.select_one("section.card .markdown")
    assert card.h1.get_text() == "New card" and card.em.get_text() == "it"
    assert "Old card" not in page.get_text() and "license: mit" not in page.get_text()
    command = page.select_one("#get-command")["value"]
    assert command == f"weightless get acme/llm --tracker {server.url}"
    for missing in ("/repos/acme/nothing", "/repos/nobody/llm", "/repos/acme"):
        assert html(await server.get(missing), 404).select_one(".error h1").get_text() == "404"


@pytest_twisted.ensureDeferred
async def test_repo_page_without_a_card(server: Server, store_url: str) -> None:
    await versions_of(server, store_url)
    await put_card(server, v2("v1"), "# Only the old one has a card\n")
    page = html(await server.get("/repos/acme/llm"))
    assert "has no model card" in page.select_one("section.card").get_text()


@pytest_twisted.ensureDeferred
async def test_repo_names_with_spaces_slashes_and_markup(server: Server) -> None:
    name = 'My <b>"model"</b>/fp16 ?#%'
    await register(server, "odd", name=name, publisher="Org Team", version="1.0")
    page = html(await server.get(f"/torrents/{v2('odd')}"))
    href = page.select_one("a.repo-link")["href"]
    assert href == "/repos/Org%20Team/My%20%3Cb%3E%22model%22%3C/b%3E/fp16%20%3F%23%25"
    repo = html(await server.get(href))
    assert listed_versions(repo) == ["1.0"]
    assert repo.find("b") is None
    assert f"Org Team / {name}" == repo.select_one("h1").get_text(" ", strip=True).replace(
        " /  ", " / "
    )
    command = repo.select_one("#get-command")["value"]
    assert command.startswith("weightless get 'Org Team/My <b>\"model\"</b>/fp16 ?#%'")


@pytest_twisted.ensureDeferred
async def test_hostile_markdown_in_a_card_stays_text(server: Server, store_url: str) -> None:
    await register(server, "card", name="tiny", publisher="acme", version="v1")
    await put_card(server, v2("card"), HOSTILE_CARD)
    for path in (f"/torrents/{v2('card')}", "/repos/acme/tiny"):
        r = await server.get(path)
        page = html(r)
        assert "default-src 'none'" in r.headers["content-security-policy"]
        card = page.select_one("section.card .markdown")
        assert card is not None and card.h1.get_text().startswith("Tiny model")
        # nothing runs: the only script is the page's own, no element has an event handler
        scripts = [s.get("src", "").split("?")[0] for s in page.find_all("script")]
        assert scripts == ["/static/live.js"]
        for element in page.find_all(True):
            assert not any(a.lower().startswith("on") for a in element.attrs), element
            assert "style" not in element.attrs, element
        assert card.find(["img", "iframe", "div", "b", "svg"]) is None
        # raw HTML is shown as text, to read
        assert '<script>alert("block")</script>' in card.get_text()
        assert '<div onclick="alert(2)"' in card.get_text()
        # nothing loads from another host
        for tag, attr in (("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src")):
            for el in page.find_all(tag):
                assert el[attr].startswith("/static/"), el
        # links: http(s) and relative only; other schemes stay text
        hrefs = [a["href"] for a in card.find_all("a")]
        assert all(
            h.startswith(("https://", "http://")) or ":" not in h.split("/")[0] for h in hrefs
        ), hrefs
        assert not any("script" in h.lower() or h.startswith("data:") for h in hrefs), hrefs
        assert "[js](javascript:alert(4))" in card.get_text()
        assert "[ref js][evil]" in card.get_text()
        links = {a.get_text(): a["href"] for a in card.find_all("a")}
        assert links["ref ok"] == "https://example.com/ref"
        assert links["rel"] == "config.json" and links["web"] == "https://example.com/x"
        # images are links the reader may follow, never loaded
        images = {a.get_text(): a["href"] for a in card.select("a.card-image")}
        assert images == {
            "image: remote": "https://evil.example/remote.png",
            "image: local": "chart.png",
        }
        assert links["image: badge"] == "https://ci.example/"  # a badge: the link's label


@pytest_twisted.ensureDeferred
async def test_real_client_hints(server: Server, tmp_path: Path) -> None:
    """Transmission 3 cannot read a hybrid's metadata at all: the page says so and sends it
    nowhere; rtorrent gets the v1-only magnet; a v1-only entry has one btih magnet and no
    such hint."""
    await register(server, "hybrid")
    page = html(await server.get(f"/torrents/{v2('hybrid')}"))
    hint = page.select_one("#transmission-hint").get_text(" ", strip=True)
    assert "Transmission 3 cannot read hybrid" in hint
    assert page.select_one("#transmission-hint a") is None
    v1_hint = page.select_one("#v1-magnet-link").find_parent("p").get_text()
    assert "rtorrent" in v1_hint and "Transmission" not in v1_hint
    entry = (await server.get("/api/registry", info_hash=v2("hybrid"))).json()
    assert (
        page.select_one("#magnet-link")["href"].split("&tr=")[0] == entry["magnet"].split("&tr=")[0]
    )
    r = await server.post_json({"info_hash": v1("only"), "name": "v1 only"})
    assert r.status == 201
    old = html(await server.get(f"/torrents/{v1('only')}"))
    assert old.select_one("#transmission-hint") is None
    magnet = old.select_one("#magnet-link")["href"]
    assert "btmh" not in magnet and f"xt=urn:btih:{v1('only')}" in magnet


@pytest_twisted.ensureDeferred
async def test_a_publisher_with_a_slash_has_its_repository_page(server: Server) -> None:
    await register(server, "slash", name="llm", publisher="Org/Team", version="v1")
    page = html(await server.get(f"/torrents/{v2('slash')}"))
    href = page.select_one("a.repo-link")["href"]
    assert href == "/repos/Org%2FTeam/llm"
    repo = html(await server.get(href))
    assert listed_versions(repo) == ["v1"]
    # `get Org/Team/llm` would look for Team/llm of Org: the command names the hash
    assert repo.select_one("#get-command")["value"].startswith(f"weightless get {v2('slash')}")


@pytest_twisted.ensureDeferred
async def test_a_card_is_rendered_once_per_write_and_kept(
    server: Server, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a page view must not render Markdown (256 KiB of it takes seconds of CPU): the HTML is
    # made the first time the card is shown after each write, and kept in the database
    from weightless.web import card

    rendered: list[str] = []

    def counting(text: str) -> str:
        rendered.append(text)
        return real(text)

    real = card.render
    monkeypatch.setattr(card, "render", counting)
    # renders run in the parse process, which this test's counting function cannot reach:
    # here they run on a thread of this process instead
    monkeypatch.setattr(server.api.registry, "run_in_thread", threads.deferToThread)
    await register(server, "kept", name="kept", publisher="acme", version="v1")
    await put_card(server, v2("kept"), "# First\n")
    for path in (f"/torrents/{v2('kept')}", f"/torrents/{v1('kept')}", "/repos/acme/kept") * 3:
        assert html(await server.get(path)).select_one("section.card h1").get_text() == "First"
    assert rendered == ["# First\n"]
    saved = raw_sql(store_url, "SELECT card_html FROM registry WHERE info_hash = ?", (v2("kept"),))
    assert saved == [("<h1>First</h1>\n",)]
    # views of a new card at once: one renders, the others wait for its HTML
    await put_card(server, v2("kept"), "# Many\n")
    pages = [server.get(f"/torrents/{v2('kept')}") for _ in range(5)]
    for page in await defer.gatherResults([defer.ensureDeferred(p) for p in pages]):
        assert html(page).select_one("section.card h1").get_text() == "Many"
    assert rendered == ["# First\n", "# Many\n"]
    del rendered[1:]
    # a new card: rendered again when next shown, and the old HTML is never shown
    await put_card(server, v2("kept"), "# Second\n")
    for _ in range(3):
        page = html(await server.get("/repos/acme/kept"))
        assert page.select_one("section.card h1").get_text() == "Second"
    assert rendered == ["# First\n", "# Second\n"]
    # HTML of another renderer (an upgrade that changes the HTML) is not used
    raw_sql(
        store_url, "UPDATE registry SET card_html = ?, card_renderer = ?", ("<h1>x</h1>", "old")
    )
    assert html(await server.get("/repos/acme/kept")).select_one("section.card h1").get_text() == (
        "Second"
    )
    assert len(rendered) == 3
    # the card as written is what the API still answers
    r = await server.get("/api/registry/card", info_hash=v2("kept"))
    assert r.body == b"# Second\n"


@pytest_twisted.ensureDeferred
async def test_html_of_a_card_replaced_meanwhile_is_not_kept(
    server: Server, store_url: str
) -> None:
    store = server.store
    await register(server, "race", name="race", publisher="acme")
    await put_card(server, v2("race"), "# New\n")
    # a page rendered the card before it was replaced: its HTML is dropped
    await store.save_card_html(v2("race"), "# Old\n", "r", "<h1>Old</h1>")
    assert await store.card_view(v2("race"), "r") == ("# New\n", None)
    await store.save_card_html(v1("race"), "# New\n", "r", "<h1>New</h1>")
    assert await store.card_view(v1("race"), "r") == ("# New\n", "<h1>New</h1>")
    assert await store.card_view(v2("race"), "other") == ("# New\n", None)
    assert await store.card_view(v2("nothing"), "r") is None
    await register(server, "bare", name="bare")
    assert await store.card_view(v2("bare"), "r") is None


@pytest_twisted.ensureDeferred
async def test_a_repository_of_more_versions_than_listed_says_how_many(server: Server) -> None:
    for n in range(103):
        await register(server, f"many{n}", name="many", publisher="acme", version=f"v{n}")
    page = html(await server.get("/repos/acme/many"))
    line = page.select_one(".repo-line").get_text()
    assert line.startswith("103 versions (the newest 100 listed); the latest is v102"), line
    assert len(page.select("ol.versions li")) == 100


@pytest_twisted.ensureDeferred
async def test_an_empty_publisher_or_name_is_no_repository(server: Server) -> None:
    await register(server, "someone's", name="llm", publisher="acme")
    service = server.api.registry
    assert await service.repository("", "llm") == ([], 0)
    assert await service.versions("acme", "") == []
    for path in ("/repos//llm", "/repos/%20/llm", "/repos/acme/"):
        assert (await server.get(path)).status == 404, path
