"""``weightless publish PATH_OR_TORRENT``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from weightless.client import api, keys, signatures
from weightless.client.cli import common
from weightless.client.cli.create import torrent_options
from weightless.client.cli.seed import seed_with_status
from weightless.client.scrape import check_passkey
from weightless.wire.text import printable
from weightless.wire.units import human_size


def shown_value(key: str, value: Any) -> Any:
    """A field of the entry as people read it: the size in binary units, with the exact
    count of bytes (as the web page shows it)."""
    if key == "size" and isinstance(value, int) and not isinstance(value, bool):
        return f"{human_size(value)} ({value:,} bytes)"
    return value


def show(published: api.Published, tracker: Any) -> None:
    entry = published.entry
    # the entry is the registry's text: escaped, so that it cannot drive the terminal
    click.echo(printable(f"registered {entry.get('name')!r} at {tracker.url}"))
    for key, value in entry.items():
        click.echo(printable(f"  {key}: {shown_value(key, value)}"))
    click.echo(f"magnet: {printable(published.created.magnet)}")
    click.echo(f"fetch it with: {printable(published.get_command(tracker))}")


def publish_data(path: str, options: dict[str, Any]) -> api.Published:
    """Hash the data with a progress bar on stderr and publish it; Ctrl-C exits 130 and
    writes nothing (the .torrent is written once the registry accepted it)."""
    try:
        with common.hashing_bar(path) as on_hashed:
            return common.run(lambda: api.publish(path, on_hashed=on_hashed, **options))
    except KeyboardInterrupt:
        common.interrupted("interrupted: no torrent written")


@click.command("publish")
@click.argument("path_or_torrent", metavar="PATH_OR_TORRENT", type=click.Path(exists=True))
@click.option("--name", help="The entry's display name. [default: the torrent's name]")
@click.option("--description", help="What it is.")
@click.option("--publisher", help="Who publishes it (a person or an organisation).")
@click.option("--license", "license_", metavar="LICENSE", help="A license id such as MIT.")
@click.option("--category", help="models, datasets, tools...")
@click.option("--tags", help="Comma-separated tags.")
@click.option(
    "--version",
    "version",
    metavar="VERSION",
    help="This version's label (1-64 of A-Z a-z 0-9 . _ + -): `get PUBLISHER/NAME@VERSION`.",
)
@click.option(
    "--card",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="The model card (Markdown) to register. [default: the folder's README.md]",
)
@click.option(
    "--api-key",
    envvar=["WL_API_KEY", "REGISTRY_KEY"],
    metavar="KEY",
    help="The registry key or a publisher token (`weightless token`), if the tracker has "
    "REGISTRY_KEY (env WL_API_KEY, then REGISTRY_KEY).",
)
@click.option(
    "-o", "--output", metavar="FILE", help="Where to write a new .torrent. [default: NAME.torrent]"
)
@click.option(
    "--sign",
    "key_file",
    metavar="KEYFILE",
    type=click.Path(exists=True, dir_okay=False),
    help="Sign the torrent with this Ed25519 key (`weightless keygen`, or an OpenSSH key); "
    "the .torrent file is signed in place.",
)
@click.option("--seed", "keep_seeding", is_flag=True, help="Go on seeding until interrupted.")
@click.option(
    "--data",
    metavar="DIR",
    type=click.Path(exists=True),
    help="With a .torrent and --seed: the folder holding its data.",
)
@torrent_options
@common.transfer_options
@common.passkey_options
@common.tracker_options
def command(
    path_or_torrent: str,
    name: str | None,
    description: str | None,
    publisher: str | None,
    license_: str | None,
    category: str | None,
    tags: str | None,
    version: str | None,
    card: str | None,
    api_key: str | None,
    output: str | None,
    key_file: str | None,
    keep_seeding: bool,
    data: str | None,
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
    **torrent: Any,
) -> None:
    """Register a torrent in the registry; make it first when given data.

    Given a file or folder, makes a hybrid .torrent of it as `create` does; given a .torrent,
    uploads that file as it is (POST /api/registry/torrent: the server computes the hashes).
    The folder's README.md (or --card FILE) is registered as the model card, and its YAML
    front matter gives --license and --tags when they are not given. Publishing a hash that
    is already registered keeps every field not given. The .torrent is written only once the
    registry accepted it. Prints the registry entry, the magnet link and the command that
    fetches it.
    """
    where = common.run(lambda: common.make_tracker(tracker, udp_port, announce_via))
    key = common.run(lambda: common.the_passkey(passkey, user_id, secret))
    if keep_seeding:  # a tracker that will not let us seed says so before any hashing
        common.run(lambda: check_passkey(where, key))
    # the key file is read first: a wrong one fails before any hashing
    sign = signatures.signer(common.run(lambda: keys.load(key_file))) if key_file else None
    settings = common.make_settings(listen, dht, download_limit, upload_limit)
    fields = {
        "name": name,
        "description": description,
        "publisher": publisher,
        "license": license_,
        "category": category,
        "tags": tags,
        "version": version,
    }
    is_torrent = Path(path_or_torrent).is_file() and path_or_torrent.endswith(".torrent")
    options: dict[str, Any] = dict(
        tracker=where,
        api_key=api_key,
        fields={k: v for k, v in fields.items() if v},
        sign=sign,
        card=card,
    )
    if is_torrent:
        published = common.run(lambda: api.publish(path_or_torrent, **options))
    else:
        torrent["piece_length"] = torrent["piece_length"] or 0
        published = publish_data(
            path_or_torrent, dict(options, output=output, passkey=key, **torrent)
        )
    common.emit(as_json, published.as_json(), lambda: show(published, where))
    if keep_seeding:
        if is_torrent and not data:
            raise common.fail("--seed with a .torrent needs --data DIR (the folder of its data)")
        folder = data or os.path.dirname(os.path.abspath(path_or_torrent))
        seed_with_status(
            str(published.created.torrent),
            folder,
            tracker=where,
            passkey=key,
            settings=settings,
            trust=not is_torrent,
        )
