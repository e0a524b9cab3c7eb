"""Publisher key files (weightless.client.keys): made by us, written by cryptography in each
format, and every kind of wrong file a user may point at (keys made by ``ssh-keygen``, which
these tests do not start, are in tests/integration/test_ssh_keygen_keys.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from weightless.client import keys
from weightless.client.errors import ClientError


def test_generate_writes_a_private_pem_readable_by_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "publisher.key"
    old = os.umask(0)  # even with a permissive umask
    try:
        key = keys.generate(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = keys.load(path)
    assert keys.public_key_hex(loaded) == keys.public_key_hex(key)
    assert len(keys.public_key_hex(key)) == 64
    # never overwrites a key file
    with pytest.raises(ClientError, match="already exists"):
        keys.generate(path)
    assert keys.public_key_hex(keys.load(path)) == keys.public_key_hex(key)
    with pytest.raises(ClientError, match="cannot write"):
        keys.generate(tmp_path / "no" / "such" / "dir" / "k")


def test_generated_keys_differ(tmp_path: Path) -> None:
    a, b = keys.generate(tmp_path / "a"), keys.generate(tmp_path / "b")
    assert keys.public_key_hex(a) != keys.public_key_hex(b)


def test_pkcs8_and_openssh_written_by_cryptography(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(keys.PASSPHRASE_ENV, raising=False)
    key = Ed25519PrivateKey.generate()
    for name, fmt in (("PKCS8", PrivateFormat.PKCS8), ("OpenSSH", PrivateFormat.OpenSSH)):
        path = tmp_path / f"{name}.key"
        path.write_bytes(key.private_bytes(Encoding.PEM, fmt, NoEncryption()))
        assert keys.public_key_hex(keys.load(path)) == keys.public_key_hex(key)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"pw"))
    )
    with pytest.raises(ClientError, match="encrypted"):
        keys.load(encrypted)
    with pytest.raises(ClientError, match="not encrypted"):
        keys.load(tmp_path / "PKCS8.key", b"pw")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello",
        b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        bytes(range(256)),
    ],
)
def test_files_that_are_not_keys(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(ClientError) as found:
        keys.load(path)
    assert str(path) in str(found.value) and "\n" not in str(found.value)


def test_unreadable_and_huge_files(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="cannot read key file"):
        keys.load(tmp_path / "missing")
    with pytest.raises(ClientError, match="cannot read key file"):
        keys.load(tmp_path)  # a folder
    huge = tmp_path / "huge"
    huge.write_bytes(b"x" * (keys.MAX_KEY_FILE + 1))
    with pytest.raises(ClientError, match="not a key file"):
        keys.load(huge)
