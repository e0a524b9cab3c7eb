"""The caller's WL_* settings must not leak into what a CLI test expects."""

from __future__ import annotations

import pytest

ENV_NAMES = (
    "WL_TRACKER",
    "WL_UDP_PORT",
    "WL_ANNOUNCE_VIA",
    "WL_PASSKEY",
    "TRACKER_SECRET",
    "WL_API_KEY",
    "REGISTRY_KEY",
    "WL_LISTEN",
    "WL_KEY_PASSPHRASE",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
