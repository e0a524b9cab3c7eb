"""Which files ``get`` fetches: FILE arguments, --include and --exclude as `fnmatch` globs over
the paths /meta lists, and the one-line errors for a selection that matches nothing."""

from __future__ import annotations

import pytest

from weightless.client.errors import ClientError
from weightless.client.selection import Selection

PATHS = [
    "config.json",
    "tokenizer.json",
    "docs/README.md",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "gguf/q4_k_m.gguf",
    "gguf/q8_0.gguf",
    "ñ dir/wéights [1].bin",
]


def pick(*files: str, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> list[str]:
    return Selection(files, include, exclude).pick(PATHS, "repo")


def test_nothing_given_selects_everything_in_order() -> None:
    assert Selection.of().everything
    assert pick() == PATHS


@pytest.mark.parametrize(
    ("include", "exclude", "want"),
    [
        (("*.json",), (), ["config.json", "tokenizer.json"]),
        (("*.md",), (), ["docs/README.md"]),  # * matches / too, as in hf download
        (("gguf/*q4*",), (), ["gguf/q4_k_m.gguf"]),
        (
            ("*",),
            ("*.safetensors", "gguf/*"),
            ["config.json", "tokenizer.json", "docs/README.md", "ñ dir/wéights [1].bin"],
        ),
        (
            (),
            ("*.gguf", "*.safetensors", "*.bin"),
            ["config.json", "tokenizer.json", "docs/README.md"],
        ),
        (("model-0000[12]-*",), ("model-00002*",), ["model-00001-of-00002.safetensors"]),
        (("*.JSON",), (), None),  # case matters, as in the torrent
        (("?onfig.json", "*.json"), (), ["config.json", "tokenizer.json"]),
    ],
)
def test_globs(include: tuple[str, ...], exclude: tuple[str, ...], want: list[str] | None) -> None:
    if want is None:
        with pytest.raises(ClientError):
            pick(include=include, exclude=exclude)
    else:
        assert pick(include=include, exclude=exclude) == want


def test_files_are_exact_paths_and_add_to_the_globs() -> None:
    assert pick("gguf/q8_0.gguf") == ["gguf/q8_0.gguf"]
    assert pick("ñ dir/wéights [1].bin") == ["ñ dir/wéights [1].bin"]  # no glob meaning
    assert pick("/docs/README.md") == ["docs/README.md"]
    assert pick("gguf/q8_0.gguf", include=("*.json",)) == [
        "config.json",
        "tokenizer.json",
        "gguf/q8_0.gguf",
    ]


def test_a_file_the_torrent_does_not_have_is_named() -> None:
    with pytest.raises(ClientError) as e:
        pick("config.json", "weights.bin", "gguf/*")
    assert str(e.value).startswith("'repo' has no file 'weights.bin', 'gguf/*'")


def test_a_selection_of_nothing_names_the_patterns() -> None:
    with pytest.raises(ClientError) as e:
        pick(include=("*.pt", "*.ckpt"), exclude=("x",))
    assert str(e.value) == "no file of 'repo' matches --include *.pt --include *.ckpt --exclude x"
    with pytest.raises(ClientError) as e:
        pick("config.json", exclude=("*.json",))
    assert str(e.value) == "no file of 'repo' matches config.json --exclude *.json"
    with pytest.raises(ClientError, match="--exclude \\*"):
        pick(exclude=("*",))


def test_the_api_takes_one_string_or_a_list() -> None:
    assert Selection.of("a", "b*", ["c", "d"]) == Selection(("a",), ("b*",), ("c", "d"))
    assert Selection.of(None, None, None).everything
