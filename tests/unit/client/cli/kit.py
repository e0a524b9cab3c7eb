"""Running the ``weightless`` command in memory (click's CliRunner) for the CLI's unit tests,
and what every failure must look like: one line on stderr and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result
from registry_kit import make_torrent

from weightless.client.cli import main
from weightless.client.torrents import Made, read_torrent


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, prog_name="weightless")


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def error_line(result: Result, status: int = 1) -> str:
    """The one line a failure prints (``Error: ...``), after checking there is only that."""
    assert result.exit_code == status, (result.output, result.exception)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def usage_error(result: Result) -> str:
    """A bad option: click's usage on stderr, exit status 2; returns the ``Error:`` line."""
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stdout == ""
    return next(line for line in result.stderr.splitlines() if line.startswith("Error:"))


def help_text(*command: str) -> str:
    result = ok(invoke(*command, "--help"))
    assert result.stdout.startswith(f"Usage: weightless {' '.join(command)}".rstrip())
    return result.stdout


def made(root: Path, name: str = "weights.bin", version: str = "hybrid") -> Made:
    """A small real .torrent (with its data under ``root``), read as the client reads one."""
    root.mkdir(parents=True, exist_ok=True)
    return read_torrent(make_torrent(root, name, version), name)
