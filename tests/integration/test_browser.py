"""The registry's pages in real headless Chromium (Debian's, driven by Playwright) against a
real ``twistd weightless``: search, filter, sort, page, open an entry, expand its file tree,
copy the magnet link, download the .torrent, watch the seeders count change, and the same
pages without JavaScript. Screenshots go to tests/screenshots/ (ignored by git).

Without Chromium these tests skip, saying how to install it; CI (.ci/run) installs it and sets
WEIGHTLESS_REQUIRE_BROWSER=1, which turns the skip into a failure."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from helpers import announce_path
from playwright.sync_api import Error, expect, sync_playwright
from registry_kit import make_folder_torrent

from integration.process import Tracker
from integration.waiting import wait_for

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("WEIGHTLESS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
EVIL = '<script>alert("owned")</script><img src=x onerror="alert(1)"> model'
DASH, LEFT, RIGHT = "\u2013", "\u2039", "\u203a"  # as the pages write "1-20" and the pager
CARD = """---
license: mit
tags: [llm]
---
# Tiny LLM <script>alert("card")</script>

A card with *Markdown*, a [link](https://example.com/docs), a remote
![chart](https://evil.example/chart.png) that must not load, raw HTML
<img src="https://evil.example/pixel.png" onerror="alert(2)"> and [a trap](javascript:alert(3)).

```bash
weightless get weightless-lab/tiny-llm-with-a-rather-long-repository-name@v1 --tracker https://tracker.example.org:8443
```

| parameter | value | note |
|---|---|---|
| hidden_size | 4096 | sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef |

A long word: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.
"""
REPO = "tiny-llm-with-a-rather-long-repository-name"
WAIT_MS = 30_000  # longest wait for something on a page (live counts refresh every 5 s)


def _unavailable(reason: str) -> None:
    reason = (
        f"browser tests SKIPPED: {reason}. Install Chromium (Debian/Ubuntu: "
        "`apt-get install chromium`) or point WEIGHTLESS_CHROMIUM at a Chromium binary"
    )
    if os.environ.get("WEIGHTLESS_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " (and WEIGHTLESS_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as e:
            _unavailable(f"{CHROMIUM} did not start: {str(e).splitlines()[0]}")
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def tracker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracker]:
    workdir = tmp_path_factory.mktemp("browser")
    started = Tracker(workdir, "--rate-limit", "0", "--swarm-file", "off").start()
    yield started
    started.kill()


def request(
    tracker: Tracker, method: str, target: str, body: bytes = b"", ctype: str = ""
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", tracker.port, timeout=10)
    try:
        headers = {"Content-Type": ctype} if ctype else {}
        conn.request(method, target, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def register(tracker: Tracker, **fields: Any) -> None:
    status, body = request(
        tracker, "POST", "/api/registry", json.dumps(fields).encode(), "application/json"
    )
    assert status == 201, body


def v2(n: int | str) -> str:
    return hashlib.sha256(f"browser {n}".encode()).hexdigest()


def v1(n: int | str) -> str:
    return hashlib.sha1(f"browser {n}".encode()).hexdigest()


class Registry:
    """What the module's tests registered."""

    torrent: bytes = b""
    info_hash: str = ""
    v1_info_hash: str = ""
    files: dict[str, int] = {}
    versions: list[str] = []  # info hashes of weightless-lab/tiny-llm-..., oldest first


@pytest.fixture(scope="module")
def registry(tracker: Tracker, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    reg = Registry()
    # 24 plain entries (more than one page of 20), over two publishers and categories
    for n in range(24):
        register(
            tracker,
            info_hash=v2(n),
            v1_info_hash=v1(n),
            name=f"Model {n:02d}",
            publisher="lab-a" if n % 2 else "lab-b",
            category="models" if n % 3 else "datasets",
            tags="llm,fp16" if n % 4 == 0 else "vision",
            license="MIT",
            size=(n + 1) * 3_000_000_000,
        )
    # an operator's mark, written straight in the database file
    with sqlite3.connect(tracker.db) as db:
        db.execute("UPDATE registry SET verified = 1 WHERE info_hash = ?", (v2(22),))
    db.close()
    register(
        tracker,
        info_hash=v2("evil"),
        name=EVIL,
        description=EVIL,
        publisher="mallory",
        category="models",
        tags="<b>x</b>",
    )
    # a model of 300 files in folders, registered by uploading its .torrent
    files = {"config.json": 512, "README.md": 2048}
    for group in range(7):
        for part in range(42):
            files[f"shards/group-{group}/part-{part:03d}.safetensors"] = 1000 + part
    files |= {f"tokenizer/vocab-{i}.txt": 300 + i for i in range(300 - len(files))}
    assert len(files) == 300
    reg.files = files
    root = tmp_path_factory.mktemp("data")
    reg.torrent = make_folder_torrent(root, "big-model", files)
    status, body = request(
        tracker,
        "POST",
        "/api/registry/torrent?publisher=weightless-lab&category=models&license=Apache-2.0"
        "&tags=llm,sharded&description=" + quote("Three hundred files\nin folders."),
        reg.torrent,
        "application/x-bittorrent",
    )
    assert status == 201, body
    created = json.loads(body)
    reg.info_hash, reg.v1_info_hash = created["info_hash"], created["v1_info_hash"]
    # a repository of two versions with a model card, long file names and long words
    long_name = "a-very-long-file-name-without-any-space-" + "x" * 60 + ".safetensors"
    for version in ("v1", "v2.0-rc1"):
        data = make_folder_torrent(
            root / version,
            REPO,
            {long_name: 4096, f"{version}/config.json": 100, "README.md": 300},
        )
        status, body = request(
            tracker,
            "POST",
            f"/api/registry/torrent?publisher=weightless-lab&version={version}&license=MIT",
            data,
            "application/x-bittorrent",
        )
        assert status == 201, body
        reg.versions.append(json.loads(body)["info_hash"])
        status, body = request(
            tracker,
            "PUT",
            f"/api/registry/card?info_hash={reg.versions[-1]}",
            (CARD + f"\nThis is {version}.\n").encode(),
            "text/markdown",
        )
        assert status in (200, 201, 204), body
    return reg


@pytest.fixture
def page(browser: Any, tracker: Tracker) -> Iterator[Any]:
    """A page in a fresh context that records dialogs (alert), script errors and CSP reports:
    a test fails if any happened."""
    context = browser.new_context(
        base_url=f"http://127.0.0.1:{tracker.port}", viewport={"width": 1280, "height": 900}
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    opened.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    opened.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    opened.on(
        "console",
        lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
    )
    yield opened
    context.close()
    assert problems == []


def names(page: Any) -> list[str]:
    texts: list[str] = page.locator("tr.entry a.entry-link").all_inner_texts()
    return texts


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


# -- the list


def test_search_filter_and_untrusted_names(page: Any, registry: Registry) -> None:
    page.goto("/")
    assert page.title() == "Registry · Weightless"
    assert page.locator("#count").inner_text() == f"1{DASH}20 of 28 entries"
    assert len(names(page)) == 20
    # the newest first: the two versions of a repository, the uploaded model, then the entry
    # with markup in its name, as text
    assert names(page)[:4] == [REPO, REPO, "big-model", EVIL]
    assert page.locator("img[src=x]").count() == 0
    marks = page.locator("tr.entry", has_text="Model 22").locator(".mark.verified")
    assert marks.inner_text() == "✔ verified"
    assert page.locator(".mark.verified").count() == 1
    shot(page, "index.png")

    page.fill("#q", "model 1")
    page.press("#q", "Enter")
    page.wait_for_url("**/?q=model+1")
    assert names(page) == [f"Model {n}" for n in range(19, 9, -1)]
    assert page.locator("#q").input_value() == "model 1"

    # a publisher link in a row filters by it, and the search box keeps the filter
    page.locator("tr.entry", has_text="Model 13").get_by_role("link", name="lab-a").click()
    page.wait_for_url("**/?q=model+1&publisher=lab-a")
    assert names(page) == ["Model 19", "Model 17", "Model 15", "Model 13", "Model 11"]
    page.locator("tr.entry", has_text="Model 17").get_by_role("link", name="models").click()
    page.wait_for_url("**/?q=model+1&publisher=lab-a&category=models")
    assert names(page) == ["Model 19", "Model 17", "Model 13", "Model 11"]
    # a chip removes its filter
    page.get_by_role("link", name="publisher: lab-a").click()
    page.wait_for_url("**/?q=model+1&category=models")
    assert names(page) == [f"Model {n}" for n in (19, 17, 16, 14, 13, 11, 10)]
    page.get_by_role("link", name="clear all").click()
    page.wait_for_url("**/")
    # tags are links too
    page.locator("tr.entry", has_text="Model 20").get_by_role("link", name="fp16").click()
    page.wait_for_url("**/?tags=fp16")
    assert names(page) == [f"Model {n:02d}" for n in (20, 16, 12, 8, 4, 0)]


def test_pages_and_sort(page: Any, tracker: Tracker, registry: Registry) -> None:
    page.goto("/")
    page.get_by_role("link", name=f"Next {RIGHT}").click()
    page.wait_for_url("**/?page=2")
    assert page.locator("#count").inner_text() == f"21{DASH}28 of 28 entries"
    assert names(page) == [f"Model {n:02d}" for n in range(7, -1, -1)]
    assert page.locator("nav.pager strong").inner_text() == "2"
    page.get_by_role("link", name=f"{LEFT} Previous").click()
    page.wait_for_url("**/")
    assert len(names(page)) == 20

    # three seeders for Model 05, one for Model 07: "Most seeders" puts them first (the order
    # comes from counts the tracker copies to the database every 2 seconds)
    for port, n in ((6001, 5), (6002, 5), (6003, 5), (6004, 7)):
        reply = tracker.announce(announce_path(bytes.fromhex(v1(n)), port, left=0))
        assert b"failure reason" not in reply
    page.get_by_role("link", name="Most seeders").click()
    page.wait_for_url("**/?sort=seeders")

    def sorted_by_seeders() -> bool:
        page.reload()
        return names(page)[:2] == ["Model 05", "Model 07"]

    wait_for(sorted_by_seeders, "Model 05 and 07 first", poll=0.25)
    row = page.locator("tr.entry", has_text="Model 05")
    assert row.locator(".seeders").inner_text() == "3"
    assert page.locator(".sort strong").inner_text() == "Most seeders"


# -- an entry


def test_entry_files_magnet_download_and_live_counts(
    page: Any, tracker: Tracker, registry: Registry, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{tracker.port}"
    page.goto("/")
    page.get_by_role("link", name="big-model").click()
    page.wait_for_url(f"**/torrents/{registry.info_hash}")
    assert page.locator("h1").inner_text() == "big-model"
    assert page.locator(".description").inner_text() == "Three hundred files\nin folders."
    files = page.locator("section.files")
    assert files.locator("p").first.inner_text().startswith("300 files, ")

    # the tree: folders closed (300 files), each with its size; a summary opens one
    part = files.locator("li.file", has_text="part-041.safetensors").first
    assert not part.is_visible()
    shards = files.locator("summary", has_text="shards/")
    assert "294 files" in shards.inner_text()
    shards.click()
    group = files.locator("summary", has_text="group-0/")
    group.click()
    assert part.is_visible()
    assert part.locator(".fsize").inner_text() == "1.0 KiB"
    shot(page, "entry.png")

    # copy the magnet link: the hybrid form (btih and btmh) with this tracker's announce URL
    page.locator("button[data-copy=magnet]").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(
        f"magnet:?xt=urn:btih:{registry.v1_info_hash}&xt=urn:btmh:1220{registry.info_hash}&dn="
    )
    query = parse_qs(urlsplit(copied).query)
    assert query["dn"] == ["big-model"] and query["tr"] == [f"{base}/announce"]
    assert page.locator("#magnet-link").get_attribute("href") == copied
    old = page.locator("#v1-magnet-link").get_attribute("href")
    assert parse_qs(urlsplit(old).query)["xt"] == [f"urn:btih:{registry.v1_info_hash}"]
    page.locator("button[data-copy=get-command]").click()
    assert page.evaluate("navigator.clipboard.readText()") == (
        f"weightless get {registry.info_hash} --tracker {base}"
    )

    # the .torrent download is the uploaded file, byte for byte
    with page.expect_download() as download:
        page.locator("#torrent-link").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert download.value.suggested_filename == "big-model.torrent"
    assert saved.read_bytes() == registry.torrent

    # a seeder announces: the count on the open page changes by itself, and on a reload
    seeders = page.locator("[data-live=seeders]")
    assert seeders.inner_text() == "0"
    reply = tracker.announce(announce_path(bytes.fromhex(registry.v1_info_hash), 6881, left=0))
    assert b"failure reason" not in reply
    expect(seeders).to_have_text("1", timeout=WAIT_MS)  # live.js, no reload
    expect(page.locator("[data-live-hash] > div").first).to_have_text("1 seeder", timeout=WAIT_MS)
    page.reload()
    assert seeders.inner_text() == "1"


def test_unknown_and_malformed_hashes(browser: Any, tracker: Tracker) -> None:
    # (Chromium logs an error for a 4xx document, so not through the `page` fixture)
    page = browser.new_page(base_url=f"http://127.0.0.1:{tracker.port}")
    response = page.goto(f"/torrents/{'0' * 64}")
    assert response.status == 404
    assert page.locator(".error h1").inner_text() == "404"
    response = page.goto("/torrents/not-a-hash")
    assert response.status == 400
    assert "Not an info hash" in page.locator(".error p").first.inner_text()
    page.close()


def test_pages_work_without_javascript(browser: Any, tracker: Tracker, registry: Registry) -> None:
    context = browser.new_context(
        base_url=f"http://127.0.0.1:{tracker.port}", java_script_enabled=False
    )
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto("/")
        page.fill("#q", "big")
        page.press("#q", "Enter")
        page.wait_for_url("**/?q=big")
        page.get_by_role("link", name="big-model").click()
        page.wait_for_url(f"**/torrents/{registry.info_hash}")
        # copy buttons need the script; the links and the text to select do not
        assert not page.locator("button[data-copy=magnet]").is_visible()
        assert page.locator("#magnet").input_value().startswith("magnet:?xt=urn:btih:")
        page.locator("summary", has_text="tokenizer/").click()
        assert page.locator("li.file", has_text="vocab-0.txt").is_visible()
    finally:
        context.close()


def test_a_repository_its_versions_and_its_card(page: Any, registry: Registry) -> None:
    """The repository page lists the versions newest first with the newest card; an entry
    links its other versions; the card's markup stays text and nothing loads from another
    host (the page fixture fails on any dialog or script error)."""
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    old = registry.versions[0]
    page.goto(f"/torrents/{old}")
    assert page.locator(".version-label").inner_text() == "v1"
    versions = page.locator(".versions a.version-link")
    assert versions.all_inner_texts() == ["v2.0-rc1", "v1"]
    assert page.locator(".versions li.current a").inner_text() == "v1"
    card = page.locator("section.card .markdown")
    assert card.locator("h1").inner_text() == 'Tiny LLM <script>alert("card")</script>'
    assert card.locator("img").count() == 0 and card.locator("script").count() == 0
    assert "[a trap](javascript:alert(3))" in card.inner_text()
    assert card.locator("a.card-image").get_attribute("href") == "https://evil.example/chart.png"
    shot(page, "entry-versions.png")
    page.locator("a.repo-link").click()
    page.wait_for_url(f"**/repos/weightless-lab/{REPO}")
    assert page.locator(".versions a.version-link").all_inner_texts() == ["v2.0-rc1", "v1"]
    assert "This is v2.0-rc1." in page.locator("section.card").inner_text()
    assert (
        page.locator("#get-command")
        .input_value()
        .startswith("weightless get weightless-lab/tiny-llm-with-a-rather-long-repository-name")
    )
    shot(page, "repo.png")
    others = [u for u in requested if not u.startswith(page.url.split("/repos/")[0])]
    assert others == []


@pytest.mark.parametrize("width", [375, 1280])
def test_on_a_phone_and_a_desktop(
    browser: Any, tracker: Tracker, registry: Registry, width: int
) -> None:
    """Nothing is wider than the screen (no sideways scrolling) at a small phone's 375 px
    and on a desktop: long hashes, magnet links, commands, file names and cards wrap or
    scroll inside their own box."""
    phone = width < 600
    context = browser.new_context(
        base_url=f"http://127.0.0.1:{tracker.port}",
        viewport={"width": width, "height": 812 if phone else 900},
        device_scale_factor=2 if phone else 1,
        is_mobile=phone,
        has_touch=phone,
    )
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    kind = "phone" if phone else "desktop"
    repo = f"/repos/weightless-lab/{REPO}"
    try:
        pages = (
            ("/", f"index-{kind}.png"),
            (f"/torrents/{registry.info_hash}", f"entry-{kind}.png"),
            (f"/torrents/{registry.versions[0]}", f"entry-card-{kind}.png"),
            (repo, f"repo-{kind}.png"),
        )
        for path, name in pages:
            page.goto(path)
            width_used = page.evaluate("document.documentElement.scrollWidth")
            assert width_used <= width, (path, width_used)
            wide = page.evaluate(
                """(limit) => [...document.querySelectorAll('main *')]
                    .filter(e => e.getBoundingClientRect().right > limit + 0.5
                              && !e.closest('pre, .markdown table, details:not([open])'))
                    .map(e => e.tagName + '.' + e.className)""",
                width,
            )
            assert wide == [], (path, wide)
            SCREENSHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
    finally:
        context.close()
