"""Text that people read: which characters may not be in it, and how to show it safely.

Pure functions over ``str``; the registry refuses what ``unsafe_char`` finds, and the
``weightless`` command escapes it with ``printable`` before writing registry text to a terminal.

The unsafe characters are the C0 controls (U+0000-U+001F), DEL (U+007F), the C1 controls
(U+0080-U+009F), the bidirectional embeddings and overrides U+202A-U+202E and the isolates
U+2066-U+2069 (Unicode TR #9): an escape sequence can rewrite a terminal (OSC 52 writes the
clipboard), and an override makes ``invoice\\u202efdp.exe`` read as ``invoiceexe.pdf``.
Multi-line fields (a description) may keep ``\\n``, ``\\r`` and ``\\t``.
"""

from __future__ import annotations

import re

_BIDI = "\u202a-\u202e\u2066-\u2069"
_UNSAFE_RE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_MULTILINE_RE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}]")  # keeps \t \n \r


def unsafe_char(text: str, multiline: bool = False) -> str | None:
    """The first character of ``text`` that people must not be shown, or ``None``.

    ``multiline`` allows ``\\n``, ``\\r`` and ``\\t`` (a description).
    """
    match = (_UNSAFE_MULTILINE_RE if multiline else _UNSAFE_RE).search(text)
    return match.group() if match else None


def describe(char: str) -> str:
    """``U+202E`` for one character: how an error message names an unsafe character."""
    return f"U+{ord(char):04X}"


def printable(text: str) -> str:
    """``text`` with every unsafe character escaped as Python writes it (ESC as ``\\x1b``,
    U+202E as ``\\u202e``), and backslashes left as they are; safe text comes back unchanged.
    """
    return _UNSAFE_RE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
