"""Publisher key files made by ``ssh-keygen`` (a process of its own): weightless.client.keys
loads Ed25519 keys, encrypted or not, and refuses RSA keys with a hint."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from weightless.client import keys
from weightless.client.errors import ClientError

pytestmark = pytest.mark.integration


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
