"""``weightless sign TORRENT --key KEYFILE``: the file signed in place, its hashes unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from registry_kit import make_torrent

from weightless.client import keys
from weightless.torrent.metainfo import parse_torrent

from .kit import error_line, help_text, invoke, ok, usage_error


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, str]:
    torrent = tmp_path / "m.torrent"
    torrent.write_bytes(make_torrent(tmp_path, "m.bin"))
    key = tmp_path / "me.key"
    public = keys.public_key_hex(keys.generate(key))
    return torrent, key, public


def test_help() -> None:
    assert "--key KEYFILE" in help_text("sign")


def test_signs_in_place(files: tuple[Path, Path, str]) -> None:
    torrent, key, public = files
    before = parse_torrent(torrent.read_bytes())
    result = ok(invoke("sign", str(torrent), "--key", str(key)))
    assert result.stdout == f"signed {torrent} with key {public}\n"
    after = parse_torrent(torrent.read_bytes())
    assert after.info_hash_hex == before.info_hash_hex
    assert [s.public_key_hex for s in after.signatures] == [public]


def test_json(files: tuple[Path, Path, str]) -> None:
    torrent, key, public = files
    found = json.loads(ok(invoke("sign", str(torrent), "--key", str(key), "--json")).stdout)
    signature = parse_torrent(torrent.read_bytes()).signatures[0]
    assert found == {
        "torrent": str(torrent),
        "public_key": public,
        "signature": signature.signature_hex,
    }


def test_a_key_file_that_is_not_a_key(files: tuple[Path, Path, str], tmp_path: Path) -> None:
    torrent, _, _ = files
    bad = tmp_path / "bad.key"
    bad.write_text("hello")
    before = torrent.read_bytes()
    line = error_line(invoke("sign", str(torrent), "--key", str(bad)))
    assert line.startswith(f"Error: {bad} is not a PKCS#8 PEM or OpenSSH private key file")
    assert torrent.read_bytes() == before


def test_a_file_that_is_not_a_torrent(files: tuple[Path, Path, str], tmp_path: Path) -> None:
    _, key, _ = files
    junk = tmp_path / "junk.torrent"
    junk.write_bytes(b"junk")
    line = error_line(invoke("sign", str(junk), "--key", str(key)))
    assert line.startswith(f"Error: cannot sign {junk}: ")


def test_the_key_is_required(files: tuple[Path, Path, str]) -> None:
    torrent, _, _ = files
    assert "Missing option '--key'" in usage_error(invoke("sign", str(torrent)))
