"""Publisher key files (weightless.client.keys): made by us, by ``ssh-keygen -t ed25519``, and
every kind of wrong file a user may point at."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from weightless.client import keys
from weightless.client.errors import ClientError


def ssh_keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "test", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def ssh_public_hex(path: Path) -> str:
    """The raw public key from ssh-keygen's own .pub file (ssh-ed25519 wire format)."""
    blob = base64.b64decode(path.with_suffix(".pub").read_text().split()[1])
    assert blob[:4] == (11).to_bytes(4, "big") and blob[4:15] == b"ssh-ed25519"
    return blob[-32:].hex()


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


def test_openssh_keys_from_ssh_keygen(tmp_path: Path) -> None:
    path = tmp_path / "id_ed25519"
    ssh_keygen(path)
    assert keys.public_key_hex(keys.load(path)) == ssh_public_hex(path)


def test_encrypted_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "id_ed25519"
    ssh_keygen(path, passphrase="correct horse")
    monkeypatch.delenv(keys.PASSPHRASE_ENV, raising=False)
    with pytest.raises(ClientError, match=f"encrypted: set {keys.PASSPHRASE_ENV}"):
        keys.load(path)
    with pytest.raises(ClientError, match="wrong passphrase"):
        keys.load(path, b"wrong")
    assert keys.public_key_hex(keys.load(path, b"correct horse")) == ssh_public_hex(path)
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "correct horse")
    assert keys.public_key_hex(keys.load(path)) == ssh_public_hex(path)
    pem = tmp_path / "enc.pem"
    made = keys.generate(pem, b"pem pass")
    assert keys.public_key_hex(keys.load(pem, b"pem pass")) == keys.public_key_hex(made)


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


def test_other_key_types_are_refused_with_a_hint(tmp_path: Path) -> None:
    rsa_path = tmp_path / "id_rsa"
    ssh_keygen(rsa_path, "rsa")
    with pytest.raises(ClientError, match="RSA key; signatures need an Ed25519 key"):
        keys.load(rsa_path)
    ec_path = tmp_path / "ec.pem"
    ec_path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    with pytest.raises(ClientError, match="Ed25519"):
        keys.load(ec_path)
    rsa_pem = tmp_path / "rsa.pem"
    rsa_pem.write_bytes(
        rsa.generate_private_key(65537, 2048).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    with pytest.raises(ClientError, match="RSA key"):
        keys.load(rsa_pem)


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
