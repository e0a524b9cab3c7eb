"""The ``weightless`` command: a thin layer over `weightless.client`. Each subcommand lives in
its own module, imported when that subcommand runs (a ``get`` of data in the cache loads no
HTTP client and no signing code)."""

from __future__ import annotations

import importlib
import signal
from types import FrameType, ModuleType
from typing import Any

import click

NAMES = (
    "create",
    "publish",
    "get",
    "seed",
    "search",
    "passkey",
    "token",
    "keygen",
    "sign",
    "verify",
)


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"weightless.client.cli.{name}")


class _Commands(click.Group):
    """The subcommands in NAMES, each imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(NAMES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in NAMES:
            return None
        command: click.Command = _module(cmd_name).command
        return command


def __getattr__(name: str) -> Any:
    if name == "COMMANDS":  # every subcommand's module, in NAMES order
        return tuple(_module(n) for n in NAMES)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="weightless", prog_name="weightless")
def main() -> None:
    """Publish and fetch AI models and datasets through a Weightless tracker and registry.

    \b
      weightless publish ./my-model --publisher me --version v1 --category models --seed
      weightless search llama
      weightless get me/my-model -o ./models

    Every subcommand takes --tracker URL (env WL_TRACKER, default http://localhost:8080) and
    --json. Errors are one line on stderr and a non-zero exit status.
    """
    # SIGTERM (systemd, docker stop, kill) stops a transfer as cleanly as Ctrl-C: stopped
    # announces sent, resume data saved. SIGINT keeps Python's handling (KeyboardInterrupt),
    # and so stays ignored when whoever started the command ignores it, as for a `cmd &` in a
    # script: only SIGTERM stops such a command
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
