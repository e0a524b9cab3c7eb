"""``weightless seed TORRENT_OR_HASH --data DIR`` with `api.seed` replaced by a fake: what it
hands on, the status line, a clean stop on Ctrl-C, and errors."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from weightless.client import api
from weightless.client.errors import ClientError
from weightless.client.trackers import Tracker
from weightless.client.transfer import Settings

from .kit import error_line, help_text, invoke, ok, usage_error


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def seed(torrent: str, data: str, **options: Any) -> None:
        calls.append({"torrent": torrent, "data": data, **options})
        if torrent == "bad":
            raise ClientError("the data in /d does not match 'm': 50% of it verifies")
        transfer = SimpleNamespace(
            status=lambda: SimpleNamespace(name="m.bin"), save_path=Path("/d")
        )
        options["ready"](transfer)
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "seed", seed)
    return calls


def test_help() -> None:
    assert "--data DIR" in help_text("seed")


def test_seeds_until_ctrl_c_then_stops_cleanly(asked: list[dict[str, Any]], tmp_path: Path) -> None:
    result = ok(invoke("seed", "m.torrent", "--data", str(tmp_path)))
    assert result.stdout == ""
    said = " ".join(result.stderr.split())  # rich wraps lines at the terminal width
    assert said == "seeding m.bin from /d (Ctrl-C stops) stopped seeding"
    (call,) = asked
    assert (call["torrent"], call["data"]) == ("m.torrent", str(tmp_path))
    assert call["tracker"] == Tracker() and call["passkey"] is None
    assert call["settings"] == Settings()
    assert callable(call["on_status"])


def test_options_are_handed_on(asked: list[dict[str, Any]], tmp_path: Path) -> None:
    ok(
        invoke(
            "seed",
            "ab" * 32,
            "--data",
            str(tmp_path),
            "--upload-limit",
            "1M",
            "--listen",
            "0.0.0.0:7000",
            "--user-id",
            "alice",
            "--secret",
            "s",
            "--udp-port",
            "6969",
        )
    )
    (call,) = asked
    assert call["settings"] == Settings("0.0.0.0:7000", False, 0, 1024**2)
    assert call["passkey"].startswith("alice.")
    assert call["tracker"] == Tracker("http://localhost:8080", 6969)


def test_data_that_does_not_match_is_one_line(asked: list[dict[str, Any]], tmp_path: Path) -> None:
    assert error_line(invoke("seed", "bad", "--data", str(tmp_path))) == (
        "Error: the data in /d does not match 'm': 50% of it verifies"
    )


def test_data_is_required_and_must_exist(asked: list[dict[str, Any]], tmp_path: Path) -> None:
    assert "Missing option '--data'" in usage_error(invoke("seed", "m.torrent"))
    assert "does not exist" in usage_error(invoke("seed", "m", "--data", str(tmp_path / "no")))
    assert asked == []


def test_a_bad_passkey_is_one_line(asked: list[dict[str, Any]], tmp_path: Path) -> None:
    line = error_line(invoke("seed", "m", "--data", str(tmp_path), "--passkey", "x"))
    assert line == "Error: a passkey looks like USER_ID.<64 hex characters>"
    assert asked == []
