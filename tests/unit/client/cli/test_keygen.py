"""``weightless keygen -o KEYFILE``: a new Ed25519 key file, its public key printed (or as
JSON), an existing file never overwritten."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from weightless.client import keys

from .kit import error_line, help_text, invoke, ok, usage_error


def test_help() -> None:
    assert "-o, --output KEYFILE" in help_text("keygen")


def test_prints_the_public_key_of_the_key_written(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    result = ok(invoke("keygen", "-o", str(path)))
    public = result.stdout.strip()
    assert public == keys.public_key_hex(keys.load(path)) and len(public) == 64
    said = " ".join(result.stderr.split())  # rich wraps lines at the terminal width
    assert said == f"wrote {path} (readable by you only); its public key:"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_json(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    found = json.loads(ok(invoke("keygen", "-o", str(path), "--json")).stdout)
    assert found == {"public_key": keys.public_key_hex(keys.load(path)), "key_file": str(path)}


def test_the_passphrase_from_the_environment_encrypts_it(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    ok(invoke("keygen", "-o", str(path), env={"WL_KEY_PASSPHRASE": "pw"}))
    assert b"ENCRYPTED" in path.read_bytes()
    assert keys.public_key_hex(keys.load(path, b"pw"))


def test_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    path.write_text("precious")
    assert error_line(invoke("keygen", "-o", str(path))) == (
        f"Error: {path} already exists; not overwriting a key file"
    )
    assert path.read_text() == "precious"


def test_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "no" / "me.key"
    assert error_line(invoke("keygen", "-o", str(path))) == (
        f"Error: cannot write {path}: No such file or directory"
    )


def test_output_is_required() -> None:
    assert "Missing option '-o' / '--output'" in usage_error(invoke("keygen"))
