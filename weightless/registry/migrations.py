"""Numbered SQL migrations, one folder per dialect: ``migrations/<dialect>/NNNN_name.sql``."""

from __future__ import annotations

from importlib import resources


def migrations(dialect: str) -> list[tuple[int, str]]:
    """(version, sql) for every migration of a dialect, oldest first."""
    folder = resources.files("weightless.registry").joinpath("migrations", dialect)
    found = []
    for item in folder.iterdir():
        name = item.name
        if name.endswith(".sql"):
            found.append((int(name.split("_", 1)[0]), item.read_text(encoding="utf-8")))
    return sorted(found)
