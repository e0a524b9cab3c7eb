"""The ``weightless`` command: a thin layer over `weightless.client`. Each subcommand lives in
its own module and is registered below."""

from __future__ import annotations

import signal
from types import FrameType

import click

from weightless.client.cli import (
    create,
    get,
    keygen,
    passkey,
    publish,
    search,
    seed,
    sign,
    token,
    verify,
)

COMMANDS = (create, publish, get, seed, search, passkey, token, keygen, sign, verify)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


for module in COMMANDS:
    main.add_command(module.command)
