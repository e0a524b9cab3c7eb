"""Fixtures that start real tracker processes and always kill them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from integration.process import Tracker


@pytest.fixture
def trackers() -> Iterator[list[Tracker]]:
    """Every Tracker appended here is killed at teardown, whatever the test did."""
    started: list[Tracker] = []
    yield started
    for tracker in started:
        tracker.kill()


@pytest.fixture
def new_tracker(tmp_path: Path, trackers: list[Tracker]) -> Callable[..., Tracker]:
    def make(*args: str, env: dict[str, str] | None = None) -> Tracker:
        tracker = Tracker(tmp_path, *args, env=env)
        trackers.append(tracker)
        return tracker

    return make
