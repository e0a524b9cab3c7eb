"""``weightless seed TORRENT_OR_HASH --data DIR``."""

from __future__ import annotations

import contextlib
from typing import Any

import click

from weightless.client import api
from weightless.client.cli import common
from weightless.wire.text import printable


def seed_with_status(torrent: str, data: str, **options: Any) -> None:
    """Seed with a status line on stderr until Ctrl-C, then stop cleanly."""

    def ready(transfer: Any) -> None:
        common.stderr.print(
            printable(f"seeding {transfer.status().name} from {transfer.save_path} (Ctrl-C stops)")
        )

    with common.transfer_bar("seeding") as on_status, contextlib.suppress(KeyboardInterrupt):
        common.run(lambda: api.seed(torrent, data, on_status=on_status, ready=ready, **options))
    common.stderr.print("stopped seeding")


@click.command("seed")
@click.argument("torrent_or_hash", metavar="TORRENT_OR_HASH")
@click.option(
    "--data",
    metavar="DIR",
    required=True,
    type=click.Path(exists=True),
    help="The folder holding the data (or the data itself).",
)
@common.transfer_options
@common.passkey_options
@common.tracker_options
def command(
    torrent_or_hash: str,
    data: str,
    tracker: str,
    udp_port: str | None,
    announce_via: str,
    as_json: bool,
    passkey: str | None,
    user_id: str | None,
    secret: str | None,
    listen: str | None,
    dht: bool,
    download_limit: str | None,
    upload_limit: str | None,
) -> None:
    """Seed a torrent until interrupted, with a status line.

    TORRENT_OR_HASH is a .torrent file, an info hash, a magnet link or PUBLISHER/NAME[@VERSION]
    as `get` takes it (the .torrent then comes from the registry). The data is checked before
    seeding starts; before that, a tracker that needs a passkey and has none (or refuses it)
    stops it at once, in the tracker's words.
    """
    where = common.run(lambda: common.make_tracker(tracker, udp_port, announce_via))
    key = common.run(lambda: common.the_passkey(passkey, user_id, secret))
    settings = common.make_settings(listen, dht, download_limit, upload_limit)
    seed_with_status(torrent_or_hash, data, tracker=where, passkey=key, settings=settings)
