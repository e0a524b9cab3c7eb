"""Unsafe characters in text people read, and their escaping for a terminal."""

from __future__ import annotations

import pytest

from weightless.wire.text import describe, printable, unsafe_char

UNSAFE = ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9b", "\u202a", "\u202e", "\u2066", "\u2069"]


@pytest.mark.parametrize("char", UNSAFE)
def test_each_unsafe_character_is_found_in_the_middle_of_a_name(char: str) -> None:
    assert unsafe_char(f"invoice{char}fdp.exe") == char


@pytest.mark.parametrize(
    "text", ["llama-3 8B", "日本語モデル", "naïve — café", "\u200dzwj", "a\u2028b"]
)
def test_ordinary_unicode_is_safe(text: str) -> None:
    assert unsafe_char(text) is None


def test_line_breaks_and_tabs_only_in_multiline_text() -> None:
    assert unsafe_char("one\ntwo") == "\n"
    assert unsafe_char("one\r\ntwo\tthree", multiline=True) is None
    assert unsafe_char("one\n\x1b[2Jtwo", multiline=True) == "\x1b"
    assert unsafe_char("a\u202eb\n", multiline=True) == "\u202e"


def test_printable_escapes_terminal_sequences_and_overrides() -> None:
    osc52 = "model\x1b]52;c;ZXZpbA==\x07"
    assert printable(osc52) == "model\\x1b]52;c;ZXZpbA==\\x07"
    assert printable("invoice\u202efdp.exe") == "invoice\\u202efdp.exe"
    assert printable("\x9b2J") == "\\x9b2J"
    assert printable("plain name ü") == "plain name ü"
    assert unsafe_char(printable("".join(UNSAFE))) is None


def test_describe_names_the_code_point() -> None:
    assert describe("\u202e") == "U+202E"
    assert describe("\x1b") == "U+001B"
