"""``weightless search [QUERY]`` with `api.search` replaced by a fake: the parameters it hands
on, the table (whole hashes when piped), --json, and bad options."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from weightless.client import api
from weightless.client.errors import ClientError
from weightless.client.registry import SearchPage
from weightless.client.trackers import Tracker
from weightless.wire.text import printable

from .kit import error_line, help_text, invoke, ok, usage_error

H1, H2 = "a1" * 32, "b2" * 20
ENTRIES = [
    {
        "info_hash": H1,
        "name": "llama-7b",
        "publisher": "meta",
        "size": 13_500_000_000,
        "seeders": 12,
        "leechers": 3,
        "verified": True,
    },
    {"info_hash": H2, "name": "tiny"},
]


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    pages = {"none": SearchPage(0, []), "past": SearchPage(2, [])}

    def search(query: str | None, **options: Any) -> SearchPage:
        calls.append({"query": query, **options})
        if query == "down":
            raise ClientError("cannot reach the tracker at http://localhost:8080: refused")
        return pages.get(query or "", SearchPage(42, ENTRIES))

    monkeypatch.setattr(api, "search", search)
    return calls


def test_help() -> None:
    text = help_text("search")
    assert "QUERY matches names by substring" in text and "[created_at|completions|seeders]" in text


def test_defaults(asked: list[dict[str, Any]]) -> None:
    ok(invoke("search"))
    assert asked == [
        {
            "query": None,
            "tracker": Tracker(),
            "category": None,
            "publisher": None,
            "tags": None,
            "sort": None,
            "limit": 50,
            "offset": 0,
        }
    ]


def test_parameters_are_handed_on(asked: list[dict[str, Any]]) -> None:
    ok(
        invoke(
            "search",
            "llama",
            "--category",
            "models",
            "--publisher",
            "meta",
            "--tags",
            "chat",
            "--sort",
            "seeders",
            "--limit",
            "100",
            "--offset",
            "5",
        )
    )
    (call,) = asked
    assert call["query"] == "llama"
    assert (call["category"], call["publisher"], call["tags"]) == ("models", "meta", "chat")
    assert (call["sort"], call["limit"], call["offset"]) == ("seeders", 100, 5)


def test_the_table_has_whole_hashes_when_piped(asked: list[dict[str, Any]]) -> None:
    lines = ok(invoke("search", "x")).stdout.splitlines()
    assert lines[0].split() == [
        "name",
        "publisher",
        "size",
        "seeders",
        "leechers",
        "verified",
        "info",
        "hash",
    ]
    assert lines[1].split() == ["llama-7b", "meta", "12.6", "GiB", "12", "3", "yes", H1]
    assert lines[2].split() == ["tiny", "0", "0", "no", H2]
    assert lines[3] == "2 of 42 entries"


HOSTILE = [
    "\x1b]52;c;cm0gLXJmIH4K\x07",  # OSC 52: writes the clipboard
    "\x1b[2J\x1b[H",  # CSI: clears the screen
    "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",  # OSC 8: a hyperlink
    "\x9b2J",  # C1 CSI, one byte
    "\x9d52;c;eA==\x9c",  # C1 OSC and ST
    "invoice\u202efdp.exe",  # right-to-left override
    "\u2066isolated\u2069",  # isolates
    "[link=https://evil.example]rich markup[/link]",
]


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("field", ["name", "publisher", "info_hash", "size", "seeders"])
def test_registry_text_reaches_the_terminal_escaped(
    monkeypatch: pytest.MonkeyPatch, text: str, field: str
) -> None:
    """A hostile registry's names, publishers (any field) cannot drive the terminal: no ESC,
    no C1 control, no bidirectional control reaches stdout; --json stays JSON."""
    hostile = {**ENTRIES[0], field: text}
    monkeypatch.setattr(api, "search", lambda query, **options: SearchPage(1, [hostile]))
    shown = ok(invoke("search")).stdout
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", shown)
    if field in ("name", "publisher", "info_hash"):
        assert printable(text) in shown
    assert json.loads(ok(invoke("search", "--json")).stdout)["entries"] == [hostile]


def test_a_later_page_says_which_entries_it_shows(asked: list[dict[str, Any]]) -> None:
    assert ok(invoke("search", "x", "--offset", "10")).stdout.splitlines()[-1] == (
        "11-12 of 42 entries"
    )


def test_nothing_found(asked: list[dict[str, Any]]) -> None:
    assert ok(invoke("search", "none")).stdout == "no entries match\n"
    assert ok(invoke("search", "past", "--offset", "9")).stdout == "no entries past 9 of 2\n"


def test_json(asked: list[dict[str, Any]]) -> None:
    assert json.loads(ok(invoke("search", "x", "--json")).stdout) == {
        "total": 42,
        "entries": ENTRIES,
    }


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--limit", "0"], "--limit"),
        (["--limit", "101"], "--limit"),
        (["--offset", "-1"], "--offset"),
        (["--sort", "size"], "--sort"),
    ],
)
def test_bad_options_are_usage_errors(
    asked: list[dict[str, Any]], options: list[str], named: str
) -> None:
    assert named in usage_error(invoke("search", *options))
    assert asked == []


def test_an_unreachable_tracker_is_one_line(asked: list[dict[str, Any]]) -> None:
    assert error_line(invoke("search", "down")) == (
        "Error: cannot reach the tracker at http://localhost:8080: refused"
    )
