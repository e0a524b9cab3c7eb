"""``weightless sign TORRENT --key KEYFILE``."""

from __future__ import annotations

import click

from weightless.client import keys, signatures
from weightless.client.cli import common


@click.command("sign")
@click.argument("torrent", metavar="TORRENT", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--key",
    "key_file",
    metavar="KEYFILE",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="An Ed25519 private key: from `weightless keygen`, or `ssh-keygen -t ed25519`.",
)
@common.tracker_options
def command(
    torrent: str,
    key_file: str,
    tracker: str,
    udp_port: str | None,
    announce_via: str,
    as_json: bool,
) -> None:
    """Sign TORRENT in place with KEYFILE.

    The signature covers both info hashes and goes in the file's `signatures`, outside `info`:
    the hashes, the magnet link and every client's view of the torrent stay the same. A file
    is signed once per key; several keys may sign it.
    """
    key = common.run(lambda: keys.load(key_file))
    added = common.run(lambda: signatures.sign_file(torrent, key))
    common.emit(
        as_json,
        {
            "torrent": torrent,
            "public_key": added.public_key_hex,
            "signature": added.signature_hex,
        },
        lambda: click.echo(f"signed {torrent} with key {added.public_key_hex}"),
    )
