"""``weightless get WHAT``."""

from __future__ import annotations

import click

from weightless.client import fetching
from weightless.client.cli import common
from weightless.wire.text import printable


@click.command("get")
@click.argument("what")
@click.argument("files", nargs=-1, metavar="[FILE]...")
@click.option(
    "--include",
    multiple=True,
    metavar="GLOB",
    help="Fetch the files whose path inside the torrent matches GLOB (fnmatch: * matches / "
    "too). Repeatable.",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="GLOB",
    help="Leave out the files whose path matches GLOB. Repeatable.",
)
@click.option(
    "-o",
    "--output",
    metavar="DIR",
    help="The folder to download into (the data goes in DIR/NAME). "
    "[default: the cache, CACHE/data/HASH/NAME]",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Use only the cache: never touch the network; fail if the data is not there.",
)
@click.option(
    "--verify", "rehash", is_flag=True, help="Hash data the cache holds as complete again."
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
    files: tuple[str, ...],
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    output: str | None,
    offline: bool,
    rehash: bool,
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
    """Download a registry entry (or some of its files) and print the path of its data.

    WHAT is a v2 (64 hex) or v1 (40 hex) info hash, a magnet link, PUBLISHER/NAME (the
    newest version) or NAME (when one publisher has entries of that name), with @VERSION for
    a given version (its label, or 8 or more hex characters of an info hash).
    FILE arguments (paths inside the torrent, as its file list shows them), --include and
    --exclude select files; only those are downloaded and written. The data goes to the cache
    (WL_CACHE, else $XDG_CACHE_HOME/weightless, else ~/.cache/weightless) unless -o; data
    already complete there is returned at once, also when the tracker is down; files the
    cache already holds (same v2 pieces root) are linked, not downloaded.

    The .torrent comes from the registry (from peers, BEP 9, if the registry has none) and
    must have the hashes asked for; a signed entry's signature is checked against them before
    any data is written. Peers come only from this tracker unless --dht. Run it again after
    an interruption to resume. Exits 0 only when every selected file is verified.
    """
    where = common.run(lambda: common.make_tracker(tracker, udp_port, announce_via))
    key = common.run(lambda: common.the_passkey(passkey, user_id, secret))
    settings = common.make_settings(listen, dht, download_limit, upload_limit)
    done: list[fetching.Fetched] = []

    def finished(fetched: fetching.Fetched) -> None:
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
                lambda: fetching.fetch(
                    what,
                    files=files,
                    include=include,
                    exclude=exclude,
                    tracker=where,
                    output=output,
                    offline=offline,
                    verify=rehash,
                    on_warning=lambda message: common.stderr.print(
                        f"warning: {message}", markup=False
                    ),
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
