"""The YAML front matter of a model card, found and split off (weightless.wire.card)."""

from __future__ import annotations

import pytest

from weightless.wire.card import split_front_matter


@pytest.mark.parametrize(
    ("text", "front", "body"),
    [
        ("---\nlicense: mit\n---\n# Model\n", "license: mit\n", "# Model\n"),
        ("---\r\nlicense: mit\r\n...\r\nbody", "license: mit\r\n", "body"),
        ("\ufeff---\nlicense: mit\n---\n", "license: mit\n", ""),
        ("---  \na: 1\n---   \nrest\n---\nmore", "a: 1\n", "rest\n---\nmore"),
        ("---\n---\nbody", "", "body"),
    ],
)
def test_front_matter_is_split_from_the_body(text: str, front: str, body: str) -> None:
    assert split_front_matter(text) == (front, body)


@pytest.mark.parametrize(
    "text",
    [
        "# Model\n---\na: 1\n---\n",  # not on the first line
        "---\nlicense: mit\nnever closed\n",
        "----\na: 1\n----\n",
        " ---\na: 1\n---\n",
        "",
        "plain text",
    ],
)
def test_text_without_front_matter_is_all_body(text: str) -> None:
    assert split_front_matter(text) == (None, text)
