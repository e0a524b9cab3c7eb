"""Sizes and rates as people read them, in binary units (KiB, MiB, GiB: powers of 1024, as
BitTorrent clients count them). The one formatting of sizes for the web pages and the
``weightless`` command. Pure: numbers in, text out."""

from __future__ import annotations

UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_size(size: int | float | None) -> str:
    """Bytes as people read them: ``512 B``, ``1.5 KiB``, ``226.0 MiB``; an empty string
    for an unknown size."""
    if size is None:
        return ""
    if size < 1024:
        return f"{int(size)} B"
    value = float(size)
    for unit in UNITS:
        value /= 1024
        if value < 1024 or unit == UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def human_rate(rate: float) -> str:
    """Bytes per second: ``0 B/s``, ``45.2 MiB/s``."""
    return f"{human_size(max(0, int(rate)))}/s"
