"""``weightless get WHAT``."""

from __future__ import annotations

import click

from weightless.client import api
from weightless.client.cli import common
from weightless.wire.text import printable


@click.command("get")
@click.argument("what")
@click.option(
    "-o",
    "--output",
    metavar="DIR",
    default=".",
    show_default=True,
    help="The folder to download into (the data goes in DIR/NAME).",
)
@click.option("--seed", "keep_seeding", is_flag=True, help="Go on seeding until interrupted.")
@click.option(
    "--require-verified",
    is_flag=True,
    help="Refuse an entry the registry does not mark verified (a signature by a key trusted "
    "for its publisher, or the operator's mark).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Give up after this many seconds in all. [default: never]",
)
@common.transfer_options
@common.passkey_options
@common.tracker_options
def command(
    what: str,
    output: str,
    keep_seeding: bool,
    require_verified: bool,
    timeout: float | None,
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
    """Download a registry entry and print the path of its data.

    WHAT is a v2 (64 hex) or v1 (40 hex) info hash, a magnet link, PUBLISHER/NAME (the
    newest version) or NAME (when one publisher has entries of that name), with @VERSION for
    a given version (its label, or 8 or more hex characters of an info hash).
    The .torrent comes from the registry (from peers, BEP 9, if the registry has none). Peers
    come only from this tracker unless --dht. Run it again after an interruption to resume:
    what was verified is kept. Exits 0 only when every piece is verified. A signed entry's
    signature is checked against the .torrent's hashes before any data is written.
    """
    where = common.run(lambda: common.make_tracker(tracker, udp_port, announce_via))
    key = common.run(lambda: common.the_passkey(passkey, user_id, secret))
    settings = common.make_settings(listen, dht, download_limit, upload_limit)
    done: list[api.Fetched] = []

    def finished(fetched: api.Fetched) -> None:
        done.append(fetched)
        bar.finish()  # the path on a line of its own, not after the bar
        path = printable(str(fetched.path))
        common.emit(as_json, fetched.as_json(), lambda: click.echo(path))
        if keep_seeding:
            common.stderr.print(f"seeding {path} (Ctrl-C stops)")
            bar.resume()

    with common.transfer_bar("getting") as bar:
        try:
            common.run(
                lambda: api.fetch(
                    what,
                    tracker=where,
                    output=output,
                    passkey=key,
                    settings=settings,
                    timeout=timeout,
                    on_status=bar,
                    seed=keep_seeding,
                    require_verified=require_verified,
                    on_done=finished,
                )
            )
        except KeyboardInterrupt:
            if not done:
                common.interrupted("interrupted: run the same command again to resume")
            common.stderr.print("stopped seeding")
            return
    if not done:
        raise common.fail("the download ended without completing")
