"""``weightless get WHAT`` with `fetching.fetch` replaced by a fake: the options it hands on, the
path (or JSON) it prints once the data is complete, seeding after, Ctrl-C, and errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from weightless.client import fetching
from weightless.client.errors import ClientError
from weightless.client.trackers import Tracker
from weightless.client.transfer import Settings

from .kit import error_line, help_text, invoke, ok, usage_error

H64 = "ab" * 32
FETCHED = fetching.Fetched(Path("/data/models/m.bin"), H64, "cd" * 20, 4096, 4096, 0, ("m.bin",))


class Fetch:
    """Stands for `fetching.fetch`: records its call, then does ``then(options)``."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.then: Callable[[dict[str, Any]], None] = self.complete

    @staticmethod
    def complete(options: dict[str, Any]) -> None:
        options["on_done"](FETCHED)

    def __call__(self, what: str, **options: Any) -> fetching.Fetched:
        self.calls.append({"what": what, **options})
        self.then(options)
        return FETCHED


@pytest.fixture
def fetch(monkeypatch: pytest.MonkeyPatch) -> Fetch:
    fake = Fetch()
    monkeypatch.setattr(fetching, "fetch", fake)
    return fake


def test_help() -> None:
    text = help_text("get")
    assert "WHAT is a v2 (64 hex) or v1 (40 hex) info hash" in text
    for option in (
        "--seed",
        "--require-verified",
        "--timeout SECONDS",
        "--dht",
        "--listen",
        "--include GLOB",
        "--exclude GLOB",
        "--offline",
        "--verify",
    ):
        assert option in text


def test_prints_the_path_once_complete(fetch: Fetch) -> None:
    result = ok(invoke("get", "my-model"))
    assert result.stdout == "/data/models/m.bin\n"
    (call,) = fetch.calls
    assert call["what"] == "my-model"
    assert call["tracker"] == Tracker()
    assert call["output"] is None and call["timeout"] is None and call["passkey"] is None
    assert call["settings"] == Settings()
    assert (call["seed"], call["require_verified"]) == (False, False)
    assert (call["files"], call["include"], call["exclude"]) == ((), (), ())
    assert (call["offline"], call["verify"]) == (False, False)


def test_files_globs_offline_and_verify_are_handed_on(fetch: Fetch) -> None:
    args = ["config.json", "sub/a b.bin", "--include", "*.json", "--include", "tok*"]
    ok(invoke("get", "m", *args, "--exclude", "*.bin", "--offline", "--verify"))
    (call,) = fetch.calls
    assert call["files"] == ("config.json", "sub/a b.bin")
    assert call["include"] == ("*.json", "tok*") and call["exclude"] == ("*.bin",)
    assert call["offline"] and call["verify"]


def test_warnings_go_to_stderr_as_they_are(fetch: Fetch) -> None:
    def warned(options: dict[str, Any]) -> None:
        options["on_warning"]("cannot reach the tracker [x]; returning the copy")
        options["on_done"](FETCHED)

    fetch.then = warned
    result = ok(invoke("get", "m"))
    assert result.stdout == "/data/models/m.bin\n"
    assert " ".join(result.stderr.split()) == (
        "warning: cannot reach the tracker [x]; returning the copy"
    )


def test_a_long_warning_and_the_seeding_line_stay_one_line_each(
    fetch: Fetch, tmp_path: Path
) -> None:
    deep = tmp_path / ("a-folder-with-a-long-name-" * 4) / "model"
    warning = (
        "cannot reach the tracker at http://localhost:52513: [Errno 111] Connection refused; "
        "returning the copy complete in the cache"
    )

    def warned(options: dict[str, Any]) -> None:
        options["on_warning"](warning)
        options["on_done"](fetching.Fetched(deep, H64, None, 1, 0, 0, ("m.bin",)))

    fetch.then = warned
    result = ok(invoke("get", "m", "--seed"))
    assert result.stdout == f"{deep}\n"
    assert result.stderr.splitlines()[:2] == [
        f"warning: {warning}",
        f"seeding {deep} (Ctrl-C stops)",
    ]


def test_options_are_handed_on(fetch: Fetch) -> None:
    ok(
        invoke(
            "get",
            H64,
            "-o",
            "models",
            "--timeout",
            "2.5",
            "--require-verified",
            "--dht",
            "--listen",
            "127.0.0.1:7000",
            "--download-limit",
            "2M",
            "--upload-limit",
            "100k",
            "--tracker",
            "http://t.example:8080",
            "--announce-via",
            "http",
        ),
    )
    (call,) = fetch.calls
    assert call["output"] == "models" and call["timeout"] == 2.5 and call["require_verified"]
    assert call["settings"] == Settings("127.0.0.1:7000", True, 2 * 1024**2, 100 * 1024)
    assert call["tracker"] == Tracker("http://t.example:8080", None, ("http",))


def test_environment_gives_the_tracker_and_passkey(fetch: Fetch) -> None:
    key = "bob." + "0" * 64
    ok(invoke("get", "m", env={"WL_TRACKER": "http://env.example", "WL_PASSKEY": key}))
    (call,) = fetch.calls
    assert call["tracker"].url == "http://env.example" and call["passkey"] == key


def test_json(fetch: Fetch) -> None:
    result = ok(invoke("get", "m", "--json"))
    assert json.loads(result.stdout) == {
        "path": "/data/models/m.bin",
        "info_hash": H64,
        "v1_info_hash": "cd" * 20,
        "bytes": 4096,
        "downloaded": 4096,
        "reused": 0,
        "files": ["m.bin"],
    }


def test_seed_goes_on_after_printing_and_ctrl_c_stops_it(fetch: Fetch) -> None:
    def complete_then_interrupted(options: dict[str, Any]) -> None:
        options["on_done"](FETCHED)
        raise KeyboardInterrupt

    fetch.then = complete_then_interrupted
    result = ok(invoke("get", "m", "--seed"))
    assert fetch.calls[0]["seed"] is True
    assert result.stdout == "/data/models/m.bin\n"
    said = " ".join(result.stderr.split())  # rich wraps lines at the terminal width
    assert said == "seeding /data/models/m.bin (Ctrl-C stops) stopped seeding"


def test_ctrl_c_before_completion_exits_130(fetch: Fetch) -> None:
    def interrupted(options: dict[str, Any]) -> None:
        raise KeyboardInterrupt

    fetch.then = interrupted
    result = invoke("get", "m")
    assert result.exit_code == 130 and result.stdout == ""
    assert result.stderr.strip() == "interrupted: run the same command again to resume"


def test_a_download_that_ends_incomplete_is_an_error(fetch: Fetch) -> None:
    fetch.then = lambda options: None
    assert error_line(invoke("get", "m")) == "Error: the download ended without completing"


def test_a_client_error_is_one_line(fetch: Fetch) -> None:
    def unknown(options: dict[str, Any]) -> None:
        raise ClientError("no registry entry at http://localhost:8080 is named 'm'")

    fetch.then = unknown
    line = error_line(invoke("get", "m"))
    assert line == "Error: no registry entry at http://localhost:8080 is named 'm'"


@pytest.mark.parametrize("timeout", ["0", "-1", "soon"])
def test_a_bad_timeout_is_a_usage_error(fetch: Fetch, timeout: str) -> None:
    assert "--timeout" in usage_error(invoke("get", "m", "--timeout", timeout))
    assert fetch.calls == []


def test_a_bad_rate_is_one_line(fetch: Fetch) -> None:
    line = error_line(invoke("get", "m", "--upload-limit", "lots"))
    assert line == (
        "Error: --upload-limit must be bytes per second such as 500k, 20M, 1.5G, not 'lots'"
    )
    assert fetch.calls == []


def test_what_is_required(fetch: Fetch) -> None:
    assert "Missing argument 'WHAT'" in usage_error(invoke("get"))
