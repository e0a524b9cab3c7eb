"""``weightless create PATH``."""

from __future__ import annotations

from typing import Any

import click

from weightless.client import api
from weightless.client.cli import common
from weightless.wire.text import printable
from weightless.wire.units import human_size


def torrent_options(f: Any) -> Any:
    """The options that shape a new torrent (shared with ``publish``)."""
    for option in reversed(
        [
            click.option("--v1-only", is_flag=True, help="A v1 torrent, for old clients."),
            click.option("--v2-only", is_flag=True, help="A v2 (BEP 52) torrent only."),
            click.option(
                "--piece-length",
                type=click.IntRange(min=16384),
                metavar="BYTES",
                help="Piece length, a power of two of at least 16384. "
                "[default: from the size, as libtorrent chooses]",
            ),
            click.option(
                "--web-seed",
                "web_seeds",
                multiple=True,
                metavar="URL",
                help="A BEP 19 web seed: an HTTP URL serving the data (repeatable).",
            ),
            click.option("--private", is_flag=True, help="Set the private flag (no DHT, no PEX)."),
            click.option("--comment", help="A comment in the .torrent."),
            click.option(
                "--source", help="A 'source' in the info dictionary (changes the hashes)."
            ),
            click.option(
                "--exclude",
                multiple=True,
                metavar="GLOB",
                help="Leave out files or folders whose path inside the folder matches "
                "(fnmatch: * also matches /; repeatable). .git/, .hg/, .svn/, __pycache__/, "
                ".DS_Store and Thumbs.db are always left out.",
            ),
        ]
    ):
        f = option(f)
    return f


def hashed(path: str, json_out: bool, options: dict[str, Any]) -> api.Created:
    """Run create with a progress bar on stderr; Ctrl-C exits 130 and writes nothing."""
    try:
        with common.hashing_bar(path) as on_hashed:
            return common.run(lambda: api.create(path, on_hashed=on_hashed, **options))
    except KeyboardInterrupt:
        common.interrupted("interrupted: no torrent written")


def show(created: api.Created) -> None:
    made = created.made
    info = made.info
    click.echo(
        f"wrote {printable(str(created.torrent))} ({made.kind}, {info.piece_count} pieces of "
        f"{human_size(info.piece_length)}, {human_size(info.total_size)} in "
        f"{len(info.files)} file{'s' if len(info.files) != 1 else ''})"
    )
    if created.info_hash:
        click.echo(f"info hash (v2): {created.info_hash}")
    if created.v1_info_hash:
        click.echo(f"info hash (v1): {created.v1_info_hash}")
    click.echo(f"magnet: {printable(created.magnet)}")


@click.command("create")
@click.argument("path", type=click.Path(exists=True))
@click.option("-o", "--output", metavar="FILE", help="Where to write it. [default: NAME.torrent]")
@click.option("--name", help="The torrent's name. [default: the file or folder name]")
@torrent_options
@common.passkey_options
@common.tracker_options
def command(
    path: str,
    output: str | None,
    name: str | None,
    tracker: str,
    udp_port: str | None,
    announce_via: str,
    as_json: bool,
    passkey: str | None,
    user_id: str | None,
    secret: str | None,
    **torrent: Any,
) -> None:
    """Make a .torrent of a file or folder.

    Hybrid v1+v2 by default (BEP 52 piece layers, BEP 47 pad files), announcing to the
    tracker's HTTP and UDP URLs (with your passkey in them if given: HTTP first then, since
    only libtorrent-based clients can send a passkey over UDP). Shows a progress bar while
    hashing, then prints both info hashes and the magnet link.
    """
    where = common.run(lambda: common.make_tracker(tracker, udp_port, announce_via))
    key = common.run(lambda: common.the_passkey(passkey, user_id, secret))
    torrent["piece_length"] = torrent["piece_length"] or 0
    created = hashed(
        path, as_json, dict(tracker=where, output=output, name=name, passkey=key, **torrent)
    )
    common.emit(as_json, created.as_json(), lambda: show(created))
