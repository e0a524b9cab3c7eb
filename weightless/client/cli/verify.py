"""``weightless verify TORRENT_OR_HASH``."""

from __future__ import annotations

import sys

import click

from weightless.client import api, signatures
from weightless.client.cli import common
from weightless.wire.text import printable


def show(found: signatures.Verification) -> None:
    click.echo(printable(found.reason))
    for key in found.public_keys:
        if key != found.public_key:
            click.echo(f"also signed by {key}")


@click.command("verify")
@click.argument("what", metavar="TORRENT_OR_HASH")
@click.option(
    "--publisher",
    help="Check the key against this publisher's trusted keys. [default: the entry's publisher]",
)
@click.option(
    "--offline", is_flag=True, help="For a .torrent file: do not ask the registry about trust."
)
@common.tracker_options
def command(
    what: str,
    publisher: str | None,
    offline: bool,
    tracker: str,
    udp_port: str | None,
    announce_via: str,
    as_json: bool,
) -> None:
    """Check the signature of a .torrent file or of a registry entry.

    TORRENT_OR_HASH is a .torrent file, or a registry entry's v2 or v1 hash, magnet link or
    PUBLISHER/NAME[@VERSION] as `get` takes it (then its signature is checked against its hashes
    and its stored .torrent). Prints which key signed it and whether the registry trusts that
    key for the publisher.
    Exits 0 when the signature is valid, 1 when it is missing or does not verify.
    """
    where = common.run(lambda: common.make_tracker(tracker, udp_port, announce_via))
    found = common.run(
        lambda: api.verify(what, tracker=where, publisher=publisher, offline=offline)
    )
    common.emit(as_json, found.as_json(), lambda: show(found))
    if not found.valid:
        sys.exit(1)
