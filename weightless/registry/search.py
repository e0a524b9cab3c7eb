"""GET /api/registry/search: the query's parameters, checked, and the LIKE pattern they make."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from weightless.registry.entries import Invalid, check_text, check_version, parse_whole

SORTS = ("created_at", "completions", "seeders")
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
MAX_OFFSET = 2**62  # past any real result set, and within every database's integers


@dataclass(frozen=True)
class Search:
    q: str | None = None  # substring of the name, any case
    category: str | None = None  # exact
    publisher: str | None = None  # exact
    tags: str | None = None  # substring of the tags, any case
    name: str | None = None  # exact
    version: str | None = None  # exact
    verified: bool | None = None  # only verified (True) or only unverified (False) entries
    sort: str = "created_at"  # newest first; completions and seeders: largest first
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def parse_search(params: Mapping[str, str]) -> Search:
    """The search from query parameters (first value of each); `Invalid` for bad ones. A
    ``limit`` above MAX_LIMIT is taken as MAX_LIMIT, an ``offset`` above MAX_OFFSET as that."""
    texts = {}
    for name in ("q", "category", "publisher", "tags", "name"):
        value = params.get(name)
        texts[name] = check_text(value, name) if value else None
    sort = params.get("sort") or "created_at"
    if sort not in SORTS:
        raise Invalid(f"sort must be one of {', '.join(SORTS)}")
    limit = params.get("limit")
    offset = params.get("offset")
    version = params.get("version") or None
    verified = params.get("verified") or None
    if verified is not None and verified not in BOOLEANS:
        raise Invalid("verified must be true or false")
    return Search(
        verified=None if verified is None else BOOLEANS[verified],
        q=texts["q"],
        category=texts["category"],
        publisher=texts["publisher"],
        tags=texts["tags"],
        name=texts["name"],
        version=None if version is None else check_version(version),
        sort=sort,
        limit=DEFAULT_LIMIT if limit is None else min(parse_whole(limit, "limit", 1), MAX_LIMIT),
        offset=0 if offset is None else min(parse_whole(offset, "offset"), MAX_OFFSET),
    )


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's own characters taken literally (escape character ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
