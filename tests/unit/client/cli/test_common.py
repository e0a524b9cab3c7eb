"""What the subcommands share (weightless.client.cli.common): tracker and rate options,
sizes as people read them, --json output, and errors as one line with a non-zero status."""

from __future__ import annotations

import errno
import io
import json
import signal

import click
import pytest
from rich.console import Console

from weightless.client.cli import COMMANDS, common
from weightless.client.errors import ClientError
from weightless.client.trackers import Tracker
from weightless.client.transfer import Settings, Status

from .kit import help_text, invoke, ok


def test_the_command_lists_every_subcommand() -> None:
    text = help_text()
    for module in COMMANDS:
        assert f"  {module.command.name} " in text
    assert "-h, --help" in text


@pytest.mark.parametrize("module", COMMANDS, ids=lambda m: m.command.name)
def test_every_subcommand_has_help_with_the_tracker_options(module: object) -> None:
    name = module.command.name  # type: ignore[attr-defined]
    text = help_text(name)
    assert "--tracker URL" in text and "--json" in text
    assert ok(invoke(name, "-h")).stdout == text


def test_version() -> None:
    from importlib.metadata import version

    assert ok(invoke("--version")).stdout == f"weightless, version {version('weightless')}\n"


def test_an_unknown_subcommand_is_a_usage_error() -> None:
    result = invoke("fetch-all")
    assert result.exit_code == 2 and "No such command 'fetch-all'" in result.stderr


# -- trackers


def test_make_tracker_reads_udp_port_and_protocols() -> None:
    assert common.make_tracker("http://t:8080", None, "http,udp") == Tracker("http://t:8080")
    assert common.make_tracker("http://t:8080", "", " UDP , ") == Tracker(
        "http://t:8080", None, ("udp",)
    )
    assert common.make_tracker("http://t:8080", "6969", "http").udp_port == 6969
    assert common.make_tracker("http://t:8080", "OFF", "http").udp_port == 0


@pytest.mark.parametrize("value", ["0", "65536", "-1", "udp", "69.5"])
def test_a_bad_udp_port_is_named(value: str) -> None:
    with pytest.raises(click.ClickException) as e:
        common.make_tracker("http://t:8080", value, "http,udp")
    assert e.value.message == f"--udp-port must be a port number or 'off', not {value!r}"


def test_a_bad_tracker_is_a_client_error_turned_into_one_line() -> None:
    with pytest.raises(click.ClickException) as e:
        common.run(lambda: common.make_tracker("ftp://t", None, "http"))
    assert e.value.message.startswith("tracker URL must be http://HOST[:PORT]")


# -- rates and sizes


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        (None, 0),
        ("", 0),
        ("500", 500),
        ("500k", 500_000),
        ("20M", 20_000_000),
        ("1.5G", 1_500_000_000),
        ("2 MB/s", 2_000_000),
        ("3kiB", 3000),
        (" 7k ", 7000),
    ],
)
def test_rates_in_decimal_units(text: str | None, rate: int) -> None:
    assert common._rate(text, "--upload-limit") == rate


@pytest.mark.parametrize("text", ["fast", "5T", "-1k", "1e3", "k"])
def test_a_bad_rate_says_what_a_rate_looks_like(text: str) -> None:
    with pytest.raises(click.ClickException) as e:
        common._rate(text, "--download-limit")
    assert e.value.message == (
        f"--download-limit must be bytes per second such as 500k, 20M, 1.5G, not {text!r}"
    )


def test_make_settings() -> None:
    assert common.make_settings("127.0.0.1:0", True, "1M", None) == Settings(
        "127.0.0.1:0", True, 1_000_000, 0
    )


def test_sizes() -> None:
    assert common.size(None) == ""
    assert common.size(1_500_000) == "1.5 MB"
    assert common.binary(16384) == "16 KiB"
    assert common.binary(4 * 1024 * 1024) == "4 MiB"
    assert common.binary(1000) == "1000 B"
    assert common.binary(1536) == "1536 B"  # not a whole KiB: left in bytes
    assert common.binary(3 * 1024**4) == "3 TiB"


# -- output and errors


def test_emit_prints_one_json_object_or_the_human_form(capsys: pytest.CaptureFixture[str]) -> None:
    shown: list[str] = []
    common.emit(True, {"name": "mödel", "n": 1}, lambda: shown.append("human"))
    common.emit(True, "plain", lambda: shown.append("human"))
    common.emit(False, {"x": 1}, lambda: shown.append("human"))
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[0]) == {"name": "mödel", "n": 1} and "mödel" in out[0]
    assert out[1:] == ["plain"]
    assert shown == ["human"]


def test_run_turns_client_and_os_errors_into_one_line() -> None:
    assert common.run(lambda: 42) == 42

    def client_error() -> None:
        raise ClientError("no such entry")

    def disk_full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "/data/x")

    def bare() -> None:
        raise OSError("weird")

    for call, message in [
        (client_error, "no such entry"),
        (disk_full, "/data/x: No space left on device"),
        (bare, "weird"),
    ]:
        with pytest.raises(click.ClickException) as e:
            common.run(call)
        assert e.value.message == message
        assert e.value.exit_code == 1


def test_other_errors_are_not_hidden() -> None:
    def bug() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        common.run(bug)


def test_interrupted_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        common.interrupted("interrupted: nothing written")
    assert e.value.code == 130
    assert capsys.readouterr().err == "interrupted: nothing written\n"


def test_the_passkey_options() -> None:
    key = common.the_passkey(None, "alice", "s3cret")
    assert key is not None and key.startswith("alice.")
    assert common.the_passkey(key, None, None) == key
    assert common.the_passkey(None, None, None) is None
    with pytest.raises(ClientError, match="not both"):
        common.the_passkey(key, "alice", "s3cret")


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """stderr as a wide terminal, so that the bars are drawn."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, color_system=None)
    monkeypatch.setattr(common, "stderr", console)
    return out


def drawn(out: io.StringIO) -> str:
    return " ".join(out.getvalue().split())


def test_transfer_bar_says_what_happens(terminal: io.StringIO) -> None:
    with common.transfer_bar("getting") as update:
        update(Status("m.bin", "metadata", 0, 0, 0.0, 0.0, 0, 0, 0, 0, "udp://t: refused"))
        assert "fetching metadata of m.bin" in drawn(terminal)
        assert "0 peers (tracker: udp://t: refused)" in drawn(terminal)
        update(Status("m.bin", "downloading", 2_000_000, 1_000_000, 1e5, 0.0, 1, 1, 1, 0, None))
        assert "downloading m.bin" in drawn(terminal) and "1 peer " in drawn(terminal)
        update(Status("m.bin", "seeding", 2_000_000, 2_000_000, 0.0, 0.0, 2, 0, 1, 0, None))
        assert "verified m.bin" in drawn(terminal)  # complete, nothing sent yet
        update(Status("m.bin", "seeding", 2_000_000, 2_000_000, 0.0, 5e5, 2, 0, 1, 3_000_000, None))
        assert "seeding m.bin" in drawn(terminal)
        assert "↑ 500.0 kB/s, 3.0 MB sent" in drawn(terminal)


def test_hashing_bar_shows_bytes_hashed(terminal: io.StringIO) -> None:
    with common.hashing_bar("weights") as hashed:
        hashed(0, 4_000_000)
        hashed(4_000_000, 4_000_000)  # the last one is always drawn
    assert "hashing weights" in drawn(terminal) and "4.0/4.0 MB" in drawn(terminal)


def test_bars_are_not_drawn_on_a_pipe(capsys: pytest.CaptureFixture[str]) -> None:
    with common.transfer_bar("getting") as update:
        update(Status("m.bin", "downloading", 10, 5, 1.0, 0.0, 1, 1, 5, 0, None))
    with common.hashing_bar("m") as hashed:
        hashed(10, 10)
    assert capsys.readouterr() == ("", "")


def test_sigterm_stops_a_command_as_ctrl_c_does() -> None:
    before = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        ok(invoke("passkey", "alice", "--secret", "s"))
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        with pytest.raises(KeyboardInterrupt):
            handler(signal.SIGTERM, None)
    finally:
        signal.signal(signal.SIGTERM, before)
