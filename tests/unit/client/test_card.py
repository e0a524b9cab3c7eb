"""The model card `weightless publish` sends, and the license and tags of its YAML front
matter (weightless.client.card)."""

from __future__ import annotations

from pathlib import Path

import pytest

from weightless.client import card
from weightless.client.errors import ClientError
from weightless.wire.card import MAX_CARD_BYTES


@pytest.mark.parametrize(
    ("front", "license_", "tags"),
    [
        ("license: mit\ntags: [llm, demo]", "mit", "llm,demo"),
        (
            "license: apache-2.0\ntags:\n  - text-generation\n  - llm\n  - llm",
            "apache-2.0",
            "text-generation,llm",
        ),
        ("tags: 'a, b ,,c'", None, "a,b,c"),
        ("license: [mit, cc-by-4.0]", "mit, cc-by-4.0", None),
        ("license: 3\ntags: {a: 1}", None, None),  # not what the fields need: left out
        ("tags: [x, 1, 2.5, true, null, [y]]", None, "x,1,2.5"),
        ("language: en", None, None),
        ("", None, None),
    ],
)
def test_license_and_tags_from_the_front_matter(
    front: str, license_: str | None, tags: str | None
) -> None:
    found = card.parse(f"---\n{front}\n---\n# Model\n")
    assert (found.license, found.tags) == (license_, tags)
    assert found.text.endswith("# Model\n")


def test_a_card_without_front_matter_gives_no_fields() -> None:
    assert card.parse("# Just a README\n") == card.Card("# Just a README\n")


@pytest.mark.parametrize(
    ("front", "problem"),
    [
        ("license: [mit", "not valid YAML"),
        ("a: &x [1]\nb: *x", "aliases are not allowed"),
        ("- a\n- b", "not a mapping"),
        ("just text", "not a mapping"),
        ("x: !!python/object/apply:os.system ['true']", "not valid YAML"),
        ("x: " + "[" * 5000 + "]" * 5000, "nested too deeply|not valid YAML"),
        ("x: '" + "a" * (card.MAX_FRONT_MATTER + 1) + "'", "longer than"),
    ],
)
def test_bad_front_matter_is_one_line(front: str, problem: str) -> None:
    with pytest.raises(ClientError) as e:
        card.parse(f"---\n{front}\n---\n", "README.md")
    message = str(e.value)
    assert "\n" not in message and "README.md" in message
    assert any(p in message for p in problem.split("|")), message


def test_a_billion_laughs_is_refused_before_it_grows() -> None:
    lines = ["a: &a ['lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol']"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}] " for i in range(8)]
    with pytest.raises(ClientError, match="aliases"):
        card.parse("---\n" + "\n".join(lines) + "\n---\n")


def test_read_a_card_file(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text("---\nlicense: mit\n---\nhi\n", encoding="utf-8")
    assert card.read(path) == card.Card("---\nlicense: mit\n---\nhi\n", "mit", None)
    assert card.find(tmp_path) == path
    assert card.find(path) is None  # a single file has no README of its own
    assert card.find(tmp_path / "missing") is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"x" * (MAX_CARD_BYTES + 1), "larger than 256 KiB"),
        (b"\xff\xfe not utf-8", "not UTF-8"),
    ],
)
def test_cards_the_registry_would_refuse(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "card.md"
    path.write_bytes(content)
    with pytest.raises(ClientError, match=problem):
        card.read(path)


def test_an_unreadable_card(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="cannot read the card"):
        card.read(tmp_path)  # a folder
