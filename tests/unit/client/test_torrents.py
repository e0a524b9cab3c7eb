"""``weightless create``: the torrents it makes load in libtorrent and hash to what it printed;
hybrid ones carry BEP 47 pad files and BEP 52 piece layers; the options land in the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest
from click.testing import CliRunner
from helpers import bdecode

from weightless.client.cli import main
from weightless.torrent.metainfo import parse_torrent

TRACKER = "http://tracker.example:8080"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "mödel v1"
    (root / "sub dir").mkdir(parents=True)
    (root / "weights 1.bin").write_bytes(os.urandom(100_000))
    (root / "ü.json").write_bytes(b"{}")
    (root / "empty.txt").write_bytes(b"")
    (root / "sub dir" / "b.bin").write_bytes(os.urandom(40_000))
    return root


def create(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["create", *args, "--tracker", TRACKER, "--json"])
    assert result.exit_code == 0, result.output
    created: dict[str, Any] = json.loads(result.stdout)
    return created


def test_hybrid_loads_in_libtorrent_and_hashes_to_what_was_printed(
    folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "x.torrent"
    created = create(str(folder), "-o", str(out))
    data = out.read_bytes()
    hashes = lt.torrent_info(data).info_hashes()
    assert created["torrent"] == str(out)
    assert created["info_hash"] == hashes.v2.to_bytes().hex()
    assert created["v1_info_hash"] == hashes.v1.to_bytes().hex()
    info = parse_torrent(data)  # the registry's own parser agrees
    assert (info.v2_info_hash.hex(), info.v1_info_hash_hex) == (  # type: ignore[union-attr]
        created["info_hash"],
        created["v1_info_hash"],
    )
    assert created["magnet"].startswith(
        f"magnet:?xt=urn:btih:{created['v1_info_hash']}&xt=urn:btmh:1220{created['info_hash']}"
    )
    torrent = bdecode(data)
    files = torrent[b"info"][b"files"]
    pads = [f for f in files if b"p" in f.get(b"attr", b"")]
    assert pads, "hybrid torrents align files to pieces with BEP 47 pad files"
    assert torrent[b"piece layers"] and torrent[b"info"][b"meta version"] == 2
    assert sorted(p for p, _ in info.files) == sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
    )
    assert torrent[b"announce-list"] == [
        [b"udp://tracker.example:8080/announce", b"http://tracker.example:8080/announce"]
    ]
    assert torrent[b"created by"] == b"weightless"


def test_piece_length_follows_libtorrent_unless_given(folder: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(50_000_000)  # sparse: 50 MB of zeros
    create(str(big), "-o", str(tmp_path / "a.torrent"))
    # libtorrent's table: up to 42,949,673 bytes 64 KiB, up to 171,798,692 bytes 128 KiB
    assert lt.torrent_info(str(tmp_path / "a.torrent")).piece_length() == 128 * 1024
    create(str(folder), "-o", str(tmp_path / "b.torrent"), "--piece-length", "65536")
    assert lt.torrent_info(str(tmp_path / "b.torrent")).piece_length() == 65536


def test_v1_only_and_v2_only(folder: Path, tmp_path: Path) -> None:
    v1 = create(str(folder), "-o", str(tmp_path / "v1.torrent"), "--v1-only")
    assert v1["info_hash"] is None and len(v1["v1_info_hash"]) == 40
    info = bdecode((tmp_path / "v1.torrent").read_bytes())[b"info"]
    assert b"file tree" not in info and b"pieces" in info
    assert "urn:btmh" not in v1["magnet"]
    v2 = create(str(folder), "-o", str(tmp_path / "v2.torrent"), "--v2-only")
    assert v2["v1_info_hash"] is None and len(v2["info_hash"]) == 64
    info = bdecode((tmp_path / "v2.torrent").read_bytes())[b"info"]
    assert b"pieces" not in info and b"file tree" in info
    for name in ("v1", "v2"):
        lt.torrent_info(str(tmp_path / f"{name}.torrent"))


def test_options_land_in_the_file(folder: Path, tmp_path: Path) -> None:
    created = create(
        str(folder / "weights 1.bin"),
        "-o", str(tmp_path / "w.torrent"),
        "--name", "renamed.bin",
        "--web-seed", "https://hub.example/files/",
        "--web-seed", "https://mirror.example/",
        "--private",
        "--comment", "a comment",
        "--source", "weightless-lab",
        "--passkey", "alice." + "0" * 64,
    )  # fmt: skip
    data = (tmp_path / "w.torrent").read_bytes()
    torrent = bdecode(data)
    info = torrent[b"info"]
    assert info[b"name"] == b"renamed.bin" and list(info[b"file tree"]) == [b"renamed.bin"]
    assert info[b"private"] == 1 and info[b"source"] == b"weightless-lab"
    assert torrent[b"url-list"] == [b"https://hub.example/files/", b"https://mirror.example/"]
    assert torrent[b"comment"] == b"a comment"
    key = "alice." + "0" * 64
    assert torrent[b"announce"] == f"http://tracker.example:8080/{key}/announce".encode()
    ti = lt.torrent_info(data)
    assert ti.name() == "renamed.bin"
    assert created["info_hash"] == ti.info_hashes().v2.to_bytes().hex()
    assert created["v1_info_hash"] == ti.info_hashes().v1.to_bytes().hex()


def test_human_output_and_progress_free_pipes(folder: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["create", str(folder), "-o", str(tmp_path / "h.torrent"), "--tracker", TRACKER]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"wrote {tmp_path / 'h.torrent'} (hybrid v1+v2, ")
    assert lines[1].startswith("info hash (v2): ") and lines[2].startswith("info hash (v1): ")
    assert lines[3].startswith("magnet: magnet:?xt=urn:btih:")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--v1-only", "--v2-only"], "exclude each other"),
        (["--piece-length", "3000000"], "power of two"),
        (["--name", "a/b"], "plain file name"),
    ],
)
def test_bad_options(folder: Path, tmp_path: Path, args: list[str], says: str) -> None:
    result = CliRunner().invoke(main, ["create", str(folder), "-o", str(tmp_path / "x"), *args])
    assert result.exit_code == 1 and says in result.output, result.output


def test_no_data(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "nothing.txt").write_bytes(b"")
    result = CliRunner().invoke(main, ["create", str(tmp_path / "empty")])
    assert result.exit_code == 1 and "at least one non-empty file" in result.output


def test_help_of_every_subcommand() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("create", "publish", "get", "seed", "search", "passkey"):
        assert name in result.output
        sub = CliRunner().invoke(main, [name, "--help"])
        assert sub.exit_code == 0, sub.output
        assert "--tracker" in sub.output and "--json" in sub.output
