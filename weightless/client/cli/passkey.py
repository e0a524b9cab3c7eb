"""``weightless passkey USER_ID``."""

from __future__ import annotations

import click

from weightless.client import api
from weightless.client.cli import common


@click.command("passkey")
@click.argument("user_id")
@click.option(
    "--secret",
    envvar="TRACKER_SECRET",
    metavar="SECRET",
    help="The tracker's TRACKER_SECRET (env TRACKER_SECRET).",
)
@common.tracker_options
def command(
    user_id: str,
    secret: str | None,
    tracker: str,
    udp_port: str | None,
    announce_via: str,
    as_json: bool,
) -> None:
    """Print the passkey of USER_ID: USER_ID.hex(HMAC-SHA256(TRACKER_SECRET, USER_ID)).

    For operators: give it to the user, who passes it to create, get and seed with --passkey.
    The passkey is printed alone, with or without --json.
    """
    click.echo(common.run(lambda: api.passkey(user_id, secret)))
