"""A hostile registry's words reach the terminal escaped, whichever way they come: the error
of a refused request, the names listed when a name is ambiguous, a tracker's failure reason.
The real command (CliRunner) against a registry played in memory; no escape sequence, C1
control or bidirectional control gets to stderr, and the error stays one line."""

from __future__ import annotations

import re

import httpx
import pytest

from weightless.wire.text import printable

from ..kit import H40, H64, Served, entry, serve
from .kit import error_line, invoke

UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
HOSTILE = [
    "\x1b]52;c;cm0gLXJmIH4K\x07",  # OSC 52: writes the clipboard
    "\x1b[2J\x1b[3J\x1b[H",  # CSI: clears the screen and the scrollback
    "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x9b2J",  # C1 CSI
    "invoice\u202efdp.exe",  # right-to-left override
    "\u2067isolate\u2069",
    "line one\nError: a second, forged line",
]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Served:
    return serve(monkeypatch)


@pytest.mark.parametrize("text", HOSTILE)
def test_a_server_error_is_escaped(served: Served, text: str) -> None:
    served.override = lambda request: httpx.Response(400, json={"error": text})
    line = error_line(invoke("search", "x"))
    assert not UNSAFE.search(line)
    assert line == f"Error: searching the registry: {printable(text)} (HTTP 400)"


@pytest.mark.parametrize("text", HOSTILE)
def test_names_listed_for_an_ambiguous_name_are_escaped(served: Served, text: str) -> None:
    served.add(entry(H64, H40, name="m", publisher=text))
    served.add(entry("cd" * 32, None, name="m", publisher="other"))
    line = error_line(invoke("get", "m", "--udp-port", "off"))
    assert not UNSAFE.search(line) and printable(text) in line


@pytest.mark.parametrize("text", HOSTILE)
def test_a_tracker_refusal_is_escaped(served: Served, text: str) -> None:
    reason = f"this tracker needs a passkey {text}".encode()

    def scrape(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/scrape"):
            return httpx.Response(200, content=b"d14:failure reason%d:%se" % (len(reason), reason))
        return None

    served.override = scrape
    line = error_line(invoke("seed", H64, "--data", "."))
    assert not UNSAFE.search(line)
    assert printable(f"this tracker needs a passkey {text}") in line
