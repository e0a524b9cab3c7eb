"""``weightless create PATH`` with `api.create` replaced by a fake: the options it hands on,
what it prints (human and --json), and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from weightless.client import api
from weightless.client.errors import ClientError
from weightless.client.trackers import Tracker

from .kit import error_line, help_text, invoke, made, ok, usage_error


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    torrent = made(tmp_path / "src")

    def create(path: str, **options: Any) -> api.Created:
        calls.append({"path": path, **options})
        options["on_hashed"](10, 40000)
        out = Path(options["output"] or "weights.bin.torrent")
        return api.Created(out, torrent.info_hash, torrent.v1_info_hash, "magnet:?xt=x", torrent)

    monkeypatch.setattr(api, "create", create)
    (tmp_path / "data").mkdir()
    return calls


def test_help_names_the_torrent_options() -> None:
    text = help_text("create")
    for option in ("--v1-only", "--v2-only", "--piece-length BYTES", "--web-seed URL", "-o,"):
        assert option in text


def test_defaults(asked: list[dict[str, Any]], tmp_path: Path) -> None:
    ok(invoke("create", str(tmp_path / "data")))
    (call,) = asked
    assert call["path"] == str(tmp_path / "data")
    assert call["tracker"] == Tracker("http://localhost:8080")
    assert call["passkey"] is None and call["output"] is None and call["name"] is None
    assert call["piece_length"] == 0
    assert (call["v1_only"], call["v2_only"], call["private"]) == (False, False, False)
    assert call["web_seeds"] == ()


def test_options_are_handed_on(asked: list[dict[str, Any]], tmp_path: Path) -> None:
    ok(
        invoke(
            "create",
            str(tmp_path / "data"),
            "-o",
            "out.torrent",
            "--name",
            "renamed",
            "--piece-length",
            "65536",
            "--v2-only",
            "--web-seed",
            "http://a/",
            "--web-seed",
            "http://b/",
            "--private",
            "--comment",
            "hi",
            "--source",
            "SRC",
            "--exclude",
            "logs",
            "--exclude",
            "*.tmp",
            "--tracker",
            "https://t.example",
            "--udp-port",
            "off",
            "--user-id",
            "alice",
            "--secret",
            "s3cret",
        )
    )
    (call,) = asked
    assert call["output"] == "out.torrent" and call["name"] == "renamed"
    assert call["piece_length"] == 65536 and call["v2_only"] and call["private"]
    assert call["web_seeds"] == ("http://a/", "http://b/")
    assert (call["comment"], call["source"]) == ("hi", "SRC")
    assert call["exclude"] == ("logs", "*.tmp")
    assert call["tracker"] == Tracker("https://t.example", 0)
    assert call["passkey"].startswith("alice.")


def test_human_output_names_the_file_hashes_and_magnet(
    asked: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = ok(invoke("create", str(tmp_path / "data"), "-o", "x.torrent")).stdout.splitlines()
    torrent = made(tmp_path / "src")
    assert out[0] == "wrote x.torrent (hybrid v1+v2, 3 pieces of 16.0 KiB, 39.1 KiB in 1 file)"
    assert out[1:] == [
        f"info hash (v2): {torrent.info_hash}",
        f"info hash (v1): {torrent.v1_info_hash}",
        "magnet: magnet:?xt=x",
    ]


def test_json_output(asked: list[dict[str, Any]], tmp_path: Path) -> None:
    result = ok(invoke("create", str(tmp_path / "data"), "--json"))
    torrent = made(tmp_path / "src")
    assert json.loads(result.stdout) == {
        "torrent": "weights.bin.torrent",
        "info_hash": torrent.info_hash,
        "v1_info_hash": torrent.v1_info_hash,
        "magnet": "magnet:?xt=x",
    }


def test_a_missing_path_is_a_usage_error(asked: list[dict[str, Any]], tmp_path: Path) -> None:
    assert "does not exist" in usage_error(invoke("create", str(tmp_path / "nothing")))
    assert asked == []


def test_a_small_piece_length_is_a_usage_error(asked: list[dict[str, Any]], tmp_path: Path) -> None:
    line = usage_error(invoke("create", str(tmp_path / "data"), "--piece-length", "1000"))
    assert "--piece-length" in line and asked == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--udp-port", "x"], "Error: --udp-port must be a port number or 'off', not 'x'"),
        (["--announce-via", "ftp"], "Error: announce protocols must be http, udp or both"),
        (["--user-id", "alice"], "Error: a passkey needs the tracker's secret"),
        (["--passkey", "nope"], "Error: a passkey looks like USER_ID.<64 hex characters>"),
    ],
)
def test_bad_tracker_or_passkey_is_one_line_before_hashing(
    asked: list[dict[str, Any]], tmp_path: Path, options: list[str], message: str
) -> None:
    assert error_line(invoke("create", str(tmp_path / "data"), *options)).startswith(message)
    assert asked == []


def test_a_client_error_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def create(path: str, **options: Any) -> api.Created:
        raise ClientError(f"{path}: a torrent needs at least one non-empty file")

    monkeypatch.setattr(api, "create", create)
    line = error_line(invoke("create", str(tmp_path)))
    assert line == f"Error: {tmp_path}: a torrent needs at least one non-empty file"


def test_ctrl_c_while_hashing_writes_nothing_and_exits_130(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def create(path: str, **options: Any) -> api.Created:
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "create", create)
    result = invoke("create", str(tmp_path))
    assert result.exit_code == 130
    assert result.stderr.strip() == "interrupted: no torrent written"
