"""``weightless token PUBLISHER``."""

from __future__ import annotations

import click

from weightless.client import api
from weightless.client.cli import common


@click.command("token")
@click.argument("publisher")
@click.option(
    "--secret",
    envvar="REGISTRY_KEY",
    metavar="KEY",
    help="The tracker's REGISTRY_KEY (env REGISTRY_KEY).",
)
@common.tracker_options
def command(
    publisher: str,
    secret: str | None,
    tracker: str,
    udp_port: str | None,
    announce_via: str,
    as_json: bool,
) -> None:
    """Print the publisher token of PUBLISHER:
    PUBLISHER.hex(HMAC-SHA256(REGISTRY_KEY, "publisher:" + PUBLISHER)).

    For operators: give it to the publisher, who publishes with it as with a registry key
    (--api-key or WL_API_KEY), but only entries whose publisher is PUBLISHER. The token is
    printed alone, with or without --json.
    """
    click.echo(common.run(lambda: api.token(publisher, secret)))
