"""GET /api/registry/search: the query's parameters, checked, and the LIKE pattern they make."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from weightless.registry.entries import Invalid, check_text

SORTS = ("created_at", "completions", "seeders")
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_OFFSET = 2**62  # past any real result set, and within every database's integers


@dataclass(frozen=True)
class Search:
    q: str | None = None  # substring of the name, any case
    category: str | None = None  # exact
    publisher: str | None = None  # exact
    tags: str | None = None  # substring of the tags, any case
    sort: str = "created_at"  # newest first; completions and seeders: largest first
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def _number(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    stripped = text.strip()
    if not stripped.lstrip("-").isdigit() or not stripped.isascii():
        raise Invalid(f"{name} must be a whole number")
    return int(stripped)


def parse_search(params: Mapping[str, str]) -> Search:
    """The search from query parameters (first value of each); `Invalid` for bad ones."""
    texts = {}
    for name in ("q", "category", "publisher", "tags"):
        value = params.get(name)
        texts[name] = check_text(value, name) if value else None
    sort = params.get("sort") or "created_at"
    if sort not in SORTS:
        raise Invalid(f"sort must be one of {', '.join(SORTS)}")
    limit = _number(params, "limit")
    if limit is None:
        limit = DEFAULT_LIMIT
    elif limit <= 0:
        raise Invalid(f"limit must be from 1 to {MAX_LIMIT}")
    offset = _number(params, "offset") or 0
    if offset < 0:
        raise Invalid("offset must not be negative")
    return Search(
        q=texts["q"],
        category=texts["category"],
        publisher=texts["publisher"],
        tags=texts["tags"],
        sort=sort,
        limit=min(limit, MAX_LIMIT),
        offset=min(offset, MAX_OFFSET),
    )


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's own characters taken literally (escape character ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
