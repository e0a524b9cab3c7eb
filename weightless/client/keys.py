"""Publisher key files: Ed25519 private keys as PKCS#8 PEM (what `generate` writes) or in
OpenSSH's format (``ssh-keygen -t ed25519``), read and written with ``cryptography``.

A key file is a secret: `generate` makes it readable by its owner only (mode 0600) and never
overwrites a file. Every failure a user can cause is a `ClientError`."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
    load_ssh_private_key,
)

from weightless.client.errors import ClientError
from weightless.state.atomic import SECRET, write_atomic
from weightless.torrent.signing import public_bytes

OPENSSH = b"-----BEGIN OPENSSH PRIVATE KEY-----"
PASSPHRASE_ENV = "WL_KEY_PASSPHRASE"  # for a key file encrypted with a passphrase
MAX_KEY_FILE = 64 * 1024  # bytes: any real key file is far smaller


def public_key_hex(key: Ed25519PrivateKey) -> str:
    """The 64 hex characters of the raw 32-byte public key (the registry's ``publisher_key``)."""
    return public_bytes(key).hex()


def generate(path: str | os.PathLike[str], passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """A new Ed25519 key, written to ``path`` as PKCS#8 PEM with mode 0600 (encrypted when a
    ``passphrase`` is given). Refuses to overwrite an existing file."""
    key = Ed25519PrivateKey.generate()
    encryption = BestAvailableEncryption(passphrase) if passphrase else NoEncryption()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption)
    target = Path(path)
    try:
        write_atomic(target, pem, SECRET, overwrite=False)
    except FileExistsError:
        raise ClientError(f"{target} already exists; not overwriting a key file") from None
    except OSError as e:
        raise ClientError(f"cannot write {target}: {e.strerror or e}") from None
    return key


def load(path: str | os.PathLike[str], passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``path`` (PKCS#8 PEM or OpenSSH). ``passphrase`` defaults to
    the ``WL_KEY_PASSPHRASE`` environment variable, for an encrypted key file."""
    source = Path(path)
    try:
        with open(source, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except OSError as e:
        raise ClientError(f"cannot read key file {source}: {e.strerror or e}") from None
    if len(data) > MAX_KEY_FILE:
        raise ClientError(f"{source} is not a key file (larger than {MAX_KEY_FILE} bytes)")
    if passphrase is None and os.environ.get(PASSPHRASE_ENV):
        passphrase = os.environ[PASSPHRASE_ENV].encode("utf-8")
    return parse(data, str(source), passphrase)


def parse(data: bytes, where: str, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """The Ed25519 private key in a key file's bytes; ``where`` names it in errors."""
    key: object
    try:
        if data.lstrip().startswith(OPENSSH):
            key = load_ssh_private_key(data, passphrase)
        else:
            key = load_pem_private_key(data, passphrase)
    except TypeError:
        if passphrase is None:
            raise ClientError(
                f"{where} is encrypted: set {PASSPHRASE_ENV} to its passphrase"
            ) from None
        raise ClientError(f"{where} is not encrypted, but a passphrase was given") from None
    except ValueError as e:
        # OpenSSH reports a wrong passphrase as a broken checksum, PEM as a wrong password
        if passphrase is not None and ("password" in str(e) or "checksum" in str(e)):
            raise ClientError(f"wrong passphrase for {where}") from None
        raise ClientError(
            f"{where} is not a PKCS#8 PEM or OpenSSH private key file"
            " (make one with `weightless keygen` or `ssh-keygen -t ed25519`)"
        ) from None
    except Exception as e:  # cryptography's backends raise a few kinds on garbage
        raise ClientError(f"{where} is not a readable private key file: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        kind = type(key).__name__.removeprefix("_").replace("PrivateKey", "")
        raise ClientError(
            f"{where} holds a {kind or 'non-Ed25519'} key; signatures need an Ed25519 key"
            " (`weightless keygen` or `ssh-keygen -t ed25519`)"
        )
    return key
