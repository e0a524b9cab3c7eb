"""Sizes and rates in binary units, as the web pages and the ``weightless`` command show them."""

from __future__ import annotations

import pytest

from weightless.wire.units import human_rate, human_size


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (None, ""),
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (236936515, "226.0 MiB"),
        (70 * 1024**3, "70.0 GiB"),
        (2**63 - 1, "8.0 EiB"),
    ],
)
def test_human_size(size: int | None, shown: str) -> None:
    assert human_size(size) == shown


@pytest.mark.parametrize(
    ("rate", "shown"),
    [(0.0, "0 B/s"), (-5.0, "0 B/s"), (1023.9, "1023 B/s"), (47_400_000.0, "45.2 MiB/s")],
)
def test_human_rate(rate: float, shown: str) -> None:
    assert human_rate(rate) == shown
