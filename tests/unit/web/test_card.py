"""Model cards as HTML (weightless.web.card): Markdown renders, and nothing a publisher writes
runs, loads from another host, or links anywhere but http(s) and relative URLs."""

from __future__ import annotations

import time

import pytest
from bs4 import BeautifulSoup

from weightless.web.card import render, safe_link

REL = "nofollow noopener noreferrer ugc"


def soup(text: str) -> BeautifulSoup:
    return BeautifulSoup(render(text), "html.parser")


def test_markdown_renders() -> None:
    page = soup(
        "---\nlicense: mit\n---\n# Tiny model\n\nSome *text* and `code`.\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint(1)\n```\n\n- one\n- two\n"
    )
    assert page.h1.get_text() == "Tiny model"
    assert page.em.get_text() == "text" and page.find("code").get_text() == "code"
    assert [td.get_text() for td in page.select("td")] == ["1", "2"]
    assert page.pre.get_text() == "print(1)\n"
    assert [li.get_text() for li in page.select("li")] == ["one", "two"]
    assert "license" not in page.get_text()  # the front matter is not part of the card shown


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<div onclick="alert(1)">hi</div>',
        "<iframe src=https://evil.example/></iframe>",
        '<a href="javascript:alert(1)">x</a>',
        "<svg onload=alert(1)>",
        "<style>body{display:none}</style>",
        '<p style="background:url(https://evil.example/t.png)">x</p>',
        "<!-- comment --><b>raw</b>",
    ],
)
def test_raw_html_is_shown_as_text(text: str) -> None:
    page = soup(text)
    assert page.find(lambda tag: tag.name not in ("p",)) is None, render(text)
    assert text.split(">")[0] in page.get_text()  # the markup is there to read


@pytest.mark.parametrize(
    "text",
    [
        "[x](javascript:alert(1))",
        "[x](JavaScript:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](java&#x09;script:alert(1))",
        "[x](<javascript:alert(1)>)",
        "<javascript:alert(1)>",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "[x](vbscript:msgbox(1))",
        "[x](file:///etc/passwd)",
        "[x](mailto:someone@example.com)",
        "[x][ref]\n\n[ref]: javascript:alert(1)",
        "[x]\n\n[x]: data:text/html,hi",
        "![x](javascript:alert(1))",
        "![x](data:image/png;base64,iVBORw0KGgo=)",
    ],
)
def test_links_of_other_schemes_stay_text(text: str) -> None:
    page = soup(text)
    assert page.find("a") is None, render(text)
    assert page.find(href=True) is None and page.find(src=True) is None


@pytest.mark.parametrize(
    ("text", "href"),
    [
        ("[x](https://example.com/a?b=1&c=2)", "https://example.com/a?b=1&c=2"),
        ("[x](HTTP://example.com/)", "HTTP://example.com/"),
        ("<https://example.com/>", "https://example.com/"),
        ("[x](config.json)", "config.json"),
        ("[x](#usage)", "#usage"),
        ("[x](/torrents/abc)", "/torrents/abc"),
        ("[x][ref]\n\n[ref]: https://example.com/ref", "https://example.com/ref"),
    ],
)
def test_http_and_relative_links_are_links(text: str, href: str) -> None:
    link = soup(text).find("a")
    assert link["href"] == href
    assert link["rel"] == REL.split()


def test_images_are_links_and_nothing_is_loaded() -> None:
    page = soup(
        "![A chart](https://evil.example/track.png) ![](local.png)\n\n"
        "[![build](https://ci.example/badge.svg)](https://ci.example/)"
    )
    assert page.find("img") is None and page.find(src=True) is None
    images = page.select("a.card-image")
    assert [(a["href"], a.get_text()) for a in images] == [
        ("https://evil.example/track.png", "image: A chart"),
        ("local.png", "image: local.png"),
    ]
    badge = page.select("a")[-1]  # a link cannot hold another: the badge is its label
    assert badge["href"] == "https://ci.example/" and badge.get_text() == "image: build"
    assert badge.find("a") is None


def test_images_inside_links_of_every_paragraph_are_labels() -> None:
    page = soup("[![a](x.png) ![b](y.png)](https://l/) ![c](z.png)\n\n![d](w.png) [![e](v.png)](u)")
    assert [a.get_text() for a in page.select("a.card-image")] == ["image: c", "image: d"]
    links = [a for a in page.select("a") if "card-image" not in (a.get("class") or [])]
    assert [(a["href"], a.get_text()) for a in links] == [
        ("https://l/", "image: a image: b"),
        ("u", "image: e"),
    ]
    assert page.find("a").find("a") is None


def test_attribute_values_are_escaped() -> None:
    page = soup('[x](https://e.example/"><script>alert(1)</script> "t\\"><b>")')
    assert page.find("script") is None and page.find("b") is None
    link = page.find("a")
    assert link is not None and "<" not in link["href"]


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://x", True),
        ("http://x", True),
        ("x/y:z", True),
        ("?a=b:c", True),
        ("javascript:x", False),
        (" javascript:x", False),
        ("java\nscript:x", False),
        ("https:x", True),
        ("ftp://x", False),
        ("blob:https://x", False),
    ],
)
def test_safe_link(url: str, ok: bool) -> None:
    assert safe_link(url) is ok


@pytest.mark.parametrize(
    "text",
    [
        "> " * 100_000,
        "[a](" * 20_000,
        "*a **b " * 10_000,
        "- " * 50_000 + "x",
        "`" * 100_000,
        # a card of images, alone or inside links: each image once, not all before it again
        "![a](b)" * 37_000,
        "[![a](b)](c)" * 21_000,
        "[" + "![a](b)" * 37_000 + "](c)",
    ],
)
def test_hostile_nesting_and_length_render_bounded(text: str) -> None:
    started = time.process_time()
    html = render(text)
    assert isinstance(html, str)
    assert time.process_time() - started < 30  # a gross bound only: never a hang or a crash
