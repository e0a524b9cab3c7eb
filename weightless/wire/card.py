"""Model cards: the Markdown text (a model's ``README.md``) stored with a registry entry, and the
YAML front matter it may open with (Hugging Face's form)::

    ---
    license: mit
    tags: [llm, demo]
    ---
    # My model

Pure: text in, text out. The `weightless` command reads the front matter's fields from it
(``weightless.client.card``); the entry pages show the text after it."""

from __future__ import annotations

MAX_CARD_BYTES = 256 * 1024  # the registry's limit on a card (UTF-8 bytes)
_OPEN = "---"
_CLOSE = ("---", "...")


def split_front_matter(text: str) -> tuple[str | None, str]:
    """(the YAML between a first line ``---`` and the next line ``---`` or ``...``, the rest);
    (None, text) when the text opens with no front matter or it is never closed. A BOM before
    it and any ``\\r\\n`` line ends are taken as they come."""
    body = text[1:] if text.startswith("\ufeff") else text
    lines = body.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n").rstrip() != _OPEN:
        return None, text
    for i in range(1, len(lines)):
        if lines[i].rstrip("\r\n").rstrip() in _CLOSE:
            return "".join(lines[1:i]), "".join(lines[i + 1 :])
    return None, text
