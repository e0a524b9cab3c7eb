"""A model card as HTML for the entry pages: CommonMark rendered by markdown-it-py with the
publisher's raw HTML shown as text, only ``http(s)`` and relative links (any other scheme,
``javascript:`` or ``data:`` say, leaves the Markdown as text), and images shown as links, so
that a page with a card still loads nothing from another host.

Pure: Markdown text in, HTML text out (a fragment, safe to put in a page as it is)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

import markdown_it
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml as escape_html
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from weightless.wire.card import split_front_matter

# a URL scheme: a letter, then letters, digits, + - . up to ":" (RFC 3986, 3.1)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_ALLOWED = ("http:", "https:")
# what renders cards, kept with each card's HTML: change it with anything that changes the
# HTML (a rule here, markdown-it-py's version), and every card is rendered again when next shown
RENDERER = f"weightless-card-2 markdown-it-py-{markdown_it.__version__}"
MAX_NESTING = 20  # block quotes and lists inside each other; what is deeper is left out
_REL = "nofollow noopener noreferrer ugc"


def safe_link(url: str) -> bool:
    """Whether a card may link to ``url``: ``http(s)://...`` or a relative reference
    (``config.json``, ``#usage``, ``/torrents/...``); never another scheme, however it is
    spelt (upper case, entities, with tabs or newlines inside: markdown-it hands this the URL
    entity-decoded and percent-encoded, and this decodes the percent escapes too)."""
    text = re.sub(r"[\x00-\x20\x7f]", "", unquote(url))  # browsers drop these in a scheme
    scheme = _SCHEME.match(text)
    return scheme is None or scheme.group().lower() in _ALLOWED


def _image_as_link(
    renderer: Any, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    """``![alt](src)`` as ``<a href="src">image: alt</a>``: the reader chooses to open it.
    Inside a link (a badge: ``[![build](badge.svg)](ci-url)``) only the label, since a link
    cannot hold another."""
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = renderer.renderInlineAsText(token.children or [], options, env) or src
    label = f'<span class="card-image-label">image:</span> {escape_html(alt)}'
    if token.meta.get("in_link"):
        return label
    return f'<a class="card-image" href="{escape_html(src)}" rel="{_REL}">{label}</a>'


def _mark_images_in_links(state: StateCore) -> None:
    """Mark each image inside a link (``token.meta["in_link"]``), in one pass over each
    paragraph's inline tokens: the image rule then needs no look back at the tokens before
    it (a card of 37,000 images would take minutes of CPU that way)."""
    for block in state.tokens:
        depth = 0
        for token in block.children or ():
            if token.type == "link_open":
                depth += 1
            elif token.type == "link_close":
                depth -= 1
            elif token.type == "image":
                token.meta["in_link"] = depth > 0


def _link_open(
    renderer: Any, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    tokens[idx].attrSet("rel", _REL)
    return str(renderer.renderToken(tokens, idx, options, env))


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "maxNesting": MAX_NESTING})
    md.enable("table")
    md.validateLink = safe_link  # type: ignore[method-assign]
    assert isinstance(md.renderer, RendererHTML)
    md.core.ruler.push("images_in_links", _mark_images_in_links)
    md.add_render_rule("image", _image_as_link)
    md.add_render_rule("link_open", _link_open)
    return md


_MD = _parser()


def render(text: str) -> str:
    """The card's Markdown (its YAML front matter left out) as an HTML fragment."""
    _, body = split_front_matter(text)
    return _MD.render(body)
