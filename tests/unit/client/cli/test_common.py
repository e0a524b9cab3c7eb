"""What the subcommands share (weightless.client.cli.common): tracker and rate options,
sizes as people read them, --json output, and errors as one line with a non-zero status."""

from __future__ import annotations

import errno
import io
import json
import re
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
        ("500k", 500 * 1024),
        ("20M", 20 * 1024**2),
        ("1.5G", 1536 * 1024**2),
        ("2 MiB/s", 2 * 1024**2),
        ("2 MB/s", 2 * 1024**2),  # the command counts in binary units, whatever the spelling
        ("3kiB", 3072),
        (" 7k ", 7168),
    ],
)
def test_rates_in_binary_units(text: str | None, rate: int) -> None:
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
        "127.0.0.1:0", True, 1024**2, 0
    )


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


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ("bad \x1b]52;c;Y3VybCBldmlsfHNo\x07 name", "bad \\x1b]52;c;Y3VybCBldmlsfHNo\\x07 name"),
        ("\x1b[2J\x1b[H cleared", "\\x1b[2J\\x1b[H cleared"),
        ("\x9b31m C1", "\\x9b31m C1"),
        ("two\nlines", "two\\x0alines"),
        ("invoice\u202efdp.exe", "invoice\\u202efdp.exe"),
    ],
)
def test_an_error_from_a_server_is_one_escaped_line(said: str, shown: str) -> None:
    """A registry's {"error": ...} or a tracker's failure reason ends up in a ClientError;
    on the terminal it cannot write the clipboard (OSC 52), clear the screen, or reorder text."""

    def refused() -> None:
        raise ClientError(f"searching the registry: {said} (HTTP 400)")

    with pytest.raises(click.ClickException) as e:
        common.run(refused)
    assert e.value.message == f"searching the registry: {shown} (HTTP 400)"


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


def status(**fields: object) -> Status:
    base: dict[str, object] = dict(
        name="m.bin",
        state="downloading",
        total=2 * 1024**2,
        done=1024**2,
        download_rate=100 * 1024.0,
        upload_rate=0.0,
        peers=1,
        seeds=1,
        downloaded=1024**2,
        uploaded=0,
        tracker_error=None,
    )
    base.update(fields)
    return Status(**base)  # type: ignore[arg-type]


def test_transfer_bar_says_what_happens(terminal: io.StringIO) -> None:
    with common.transfer_bar("getting") as update:
        update(status(state="metadata", total=0, done=0, peers=0, seeds=0, tracker_error="no"))
        assert "fetching metadata of m.bin" in drawn(terminal)
        assert "waiting for peers; the tracker says: no" in drawn(terminal)
        update(status())
        assert "downloading m.bin" in drawn(terminal)
        assert "1.0 MiB of 2.0 MiB 100.0 KiB/s 1 peer (1 seeder) 0:00:10 left" in drawn(terminal)
        update(status(state="seeding", done=2 * 1024**2, download_rate=0.0))
        assert "verified m.bin" in drawn(terminal)  # complete, nothing sent yet
        update(status(state="seeding", done=2 * 1024**2, upload_rate=5e5, uploaded=3 * 1024**2))
        assert "seeding m.bin" in drawn(terminal)
        assert "↑ 488.3 KiB/s, 3.0 MiB sent" in drawn(terminal)


def test_the_path_after_a_bar_is_on_its_own_line(terminal: io.StringIO) -> None:
    with common.transfer_bar("getting") as bar:
        bar(status())
        bar.finish()
        common.stderr.file.write("/data/m.bin\n")
        bar.resume()
        bar(status(state="seeding", done=2 * 1024**2))
    cursor = re.compile("\x1b\\[\\?25[lh]")  # rich hides the cursor while it draws
    assert "\n/data/m.bin\n" in cursor.sub("", terminal.getvalue())


def test_a_name_cannot_drive_the_terminal_from_the_bar(terminal: io.StringIO) -> None:
    with common.transfer_bar("getting") as bar:
        bar(status(name="[link=http://evil.example]x[/link] \x1b]8;;http://evil\x07y", peers=0))
    shown = terminal.getvalue()
    assert "\x1b]8" not in shown and "\\x1b]8;;http://evil\\x07y" in shown
    assert "[link=http://evil.example]x[/link]" in shown  # shown as text, not a hyperlink


def test_hashing_bar_shows_bytes_hashed(terminal: io.StringIO) -> None:
    with common.hashing_bar("weights") as hashed:
        hashed(0, 4 * 1024**2)
        hashed(4 * 1024**2, 4 * 1024**2)  # the last one is always drawn
    assert "hashing weights" in drawn(terminal) and "4.0 MiB of 4.0 MiB" in drawn(terminal)


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
