"""The parameters of GET /api/registry/search (weightless.registry.search): defaults, the
checks that make a 400, the caps on limit and offset, and LIKE patterns that take ``%`` and
``_`` literally."""

from __future__ import annotations

import pytest

from weightless.registry.entries import Invalid
from weightless.registry.search import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    Search,
    like_pattern,
    parse_search,
)


def test_no_parameters_is_the_newest_first_page() -> None:
    assert parse_search({}) == Search(sort="created_at", limit=DEFAULT_LIMIT, offset=0)
    # empty values are as good as absent
    assert parse_search({"q": "", "sort": "", "verified": "", "category": ""}) == Search()


def test_every_parameter_is_taken() -> None:
    params = {
        "q": "llama",
        "category": "model",
        "publisher": "acme",
        "tags": "nlp",
        "verified": "true",
        "sort": "completions",
        "limit": "10",
        "offset": "20",
    }
    assert parse_search(params) == Search(
        q="llama",
        category="model",
        publisher="acme",
        tags="nlp",
        verified=True,
        sort="completions",
        limit=10,
        offset=20,
    )


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("1", True), ("false", False), ("0", False)]
)
def test_verified_takes_true_false_1_and_0(text: str, value: bool) -> None:
    assert parse_search({"verified": text}).verified is value


def test_limit_and_offset_above_the_caps_are_taken_as_the_caps() -> None:
    assert parse_search({"limit": str(MAX_LIMIT + 1)}).limit == MAX_LIMIT
    assert parse_search({"offset": str(MAX_OFFSET + 1)}).offset == MAX_OFFSET
    assert parse_search({"offset": str(2**63 - 1)}).offset == MAX_OFFSET


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sort": "name"}, "sort must be one of created_at, completions, seeders"),
        ({"verified": "yes"}, "verified must be true or false"),
        ({"limit": "0"}, "limit must be a whole number from 1"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"offset": "-1"}, "offset must be a whole number from 0"),
        ({"offset": "+5"}, "offset"),
        ({"q": "a\x00b"}, "q must not contain NUL characters"),
        ({"tags": "\x00"}, "tags"),
    ],
)
def test_bad_parameters_are_refused_with_what_is_expected(
    params: dict[str, str], message: str
) -> None:
    with pytest.raises(Invalid, match=message):
        parse_search(params)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("llama", "%llama%"),
        ("100%", "%100\\%%"),
        ("a_b", "%a\\_b%"),
        ("back\\slash", "%back\\\\slash%"),
    ],
)
def test_like_patterns_take_like_characters_literally(text: str, pattern: str) -> None:
    assert like_pattern(text) == pattern
