"""``weightless keygen -o KEYFILE``."""

from __future__ import annotations

import os

import click

from weightless.client import keys
from weightless.client.cli import common


@click.command("keygen")
@click.option(
    "-o",
    "--output",
    "key_file",
    metavar="KEYFILE",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the private key (PKCS#8 PEM, mode 0600; never overwritten).",
)
@common.tracker_options
def command(
    key_file: str, tracker: str, udp_port: str | None, announce_via: str, as_json: bool
) -> None:
    """Make an Ed25519 publisher key and print its public key (64 hex).

    Give the public key to the registry's operator, who trusts it for your publisher name;
    sign with `weightless sign` or `weightless publish --sign KEYFILE`. With WL_KEY_PASSPHRASE
    set, the key file is encrypted with it. An OpenSSH key (`ssh-keygen -t ed25519`) works
    as a key file too.
    """
    passphrase = os.environ.get(keys.PASSPHRASE_ENV)
    key = common.run(lambda: keys.generate(key_file, passphrase.encode() if passphrase else None))
    public = keys.public_key_hex(key)
    if not as_json:
        common.stderr.print(f"wrote {key_file} (readable by you only); its public key:")
    common.emit(as_json, {"public_key": public, "key_file": key_file}, lambda: click.echo(public))
