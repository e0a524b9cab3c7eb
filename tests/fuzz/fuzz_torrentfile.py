"""Fuzz harness: the .torrent parser (weightless.torrent.metainfo.parse_torrent).

Anything but a TorrentInfo or a TorrentError is a crash, and so is a TorrentInfo whose /meta
view is not JSON or whose hashes have the wrong size. Run it alone with
``python tests/fuzz/fuzz_torrentfile.py tests/fuzz/corpus/torrentfile``."""

from __future__ import annotations

import json
import sys

import atheris

with atheris.instrument_imports():
    from weightless.registry.entries import stored_meta
    from weightless.torrent.metainfo import TorrentError, parse_torrent


def TestOneInput(data: bytes) -> None:
    try:
        info = parse_torrent(data)
    except TorrentError:
        return
    if info.v1_info_hash is None and info.v2_info_hash is None:
        raise AssertionError("a torrent without any info hash")
    if info.v1_info_hash is not None and len(info.v1_info_hash) != 20:
        raise AssertionError("v1 hash of the wrong size")
    if info.v2_info_hash is not None and len(info.v2_info_hash) != 32:
        raise AssertionError("v2 hash of the wrong size")
    if info.total_size < 0 or info.piece_count < 0 or info.piece_length <= 0:
        raise AssertionError(f"impossible sizes: {info}")
    meta = json.loads(stored_meta(data))  # what /meta stores and serves
    if meta["total_size"] != info.total_size:
        raise AssertionError("the stored view disagrees with the parse")


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
