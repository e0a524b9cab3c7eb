"""Shared test set-up: pytest-twisted's reactor, and a check that fails a test when a Deferred
error went unhandled (pytest, unlike trial, would otherwise let it pass silently)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.logger import globalLogPublisher


@pytest.fixture(autouse=True)
def no_unhandled_deferred_errors() -> Iterator[None]:
    errors: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        failure = event.get("log_failure")
        text = str(event.get("log_format", ""))
        if failure is not None and "Unhandled error in Deferred" in text:
            errors.append(failure.getTraceback())

    globalLogPublisher.addObserver(observe)
    try:
        yield
        gc.collect()
    finally:
        globalLogPublisher.removeObserver(observe)
    if errors:
        pytest.fail("unhandled error in a Deferred:\n" + "\n".join(errors))
