"""The model card `weightless publish` sends: a folder's ``README.md`` (or ``--card FILE``),
and the ``license`` and ``tags`` its YAML front matter gives (Hugging Face's model card form).

The front matter is read with PyYAML's safe loader, bounded: at most `MAX_FRONT_MATTER`
characters, no aliases (a few lines of anchors and aliases can expand to gigabytes), and a
value that is not what the field needs is left out rather than guessed at."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from weightless.client.errors import ClientError
from weightless.wire.card import MAX_CARD_BYTES, split_front_matter

CARD_NAME = "README.md"
MAX_FRONT_MATTER = 64 * 1024  # characters of YAML


@dataclass(frozen=True)
class Card:
    """A card's text and the entry fields its front matter gives (``license``, ``tags`` as the
    registry's comma-separated text); fields it does not give are None."""

    text: str
    license: str | None = None
    tags: str | None = None


class _NoAliases(yaml.SafeLoader):
    """The safe loader, refusing aliases (``*name``)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases are not allowed in front matter", event.start_mark
            )
        return super().compose_node(parent, index)


def front_matter(text: str, where: str = "the card") -> dict[str, Any]:
    """The YAML front matter of a Markdown text as a dict ({} when there is none). Raises
    `ClientError` for front matter that is too long, not YAML, or not a mapping."""
    yaml_text, _ = split_front_matter(text)
    if yaml_text is None or not yaml_text.strip():
        return {}
    if len(yaml_text) > MAX_FRONT_MATTER:
        raise ClientError(
            f"the front matter of {where} is longer than {MAX_FRONT_MATTER} characters"
        )
    try:
        data = yaml.load(yaml_text, Loader=_NoAliases)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 2})" if mark is not None else ""
        raise ClientError(f"the front matter of {where} is not valid YAML: {problem}{at}") from None
    except RecursionError:
        raise ClientError(f"the front matter of {where} is nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ClientError(f"the front matter of {where} is not a mapping of fields")
    return data


def _license(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ", ".join(v.strip() for v in value if v.strip()) or None
    return None


def _tags(value: Any) -> str | None:
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list):
        items = [
            str(v) for v in value if isinstance(v, str | int | float) and not isinstance(v, bool)
        ]
    else:
        return None
    seen: list[str] = []
    for item in items:
        item = item.strip()
        if item and item not in seen:
            seen.append(item)
    return ",".join(seen) or None


def parse(text: str, where: str = "the card") -> Card:
    """A card's text with ``license`` and ``tags`` from its front matter."""
    fields = front_matter(text, where)
    return Card(text, _license(fields.get("license")), _tags(fields.get("tags")))


def read(path: Path) -> Card:
    """The card in a file: UTF-8 Markdown of at most `MAX_CARD_BYTES`. Raises `ClientError`."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CARD_BYTES + 1)
    except OSError as e:
        raise ClientError(f"cannot read the card {path}: {e.strerror or e}") from None
    if len(data) > MAX_CARD_BYTES:
        raise ClientError(f"the card {path} is larger than {MAX_CARD_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ClientError(f"the card {path} is not UTF-8 text") from None
    return parse(text, str(path))


def find(path: Path) -> Path | None:
    """The folder's ``README.md`` (a file's folder is not looked in), or None."""
    candidate = path / CARD_NAME
    return candidate if path.is_dir() and candidate.is_file() else None
