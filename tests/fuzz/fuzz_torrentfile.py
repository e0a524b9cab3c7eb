"""Fuzz harness: the .torrent parser (weightless.torrent.metainfo.parse_torrent).

Anything but a TorrentInfo or a TorrentError is a crash, and so is a TorrentInfo whose /meta
view is not JSON or whose hashes have the wrong size, one whose name or file names hold a
character people must not be shown or a component that leaves the download folder (``.``,
``..``, empty, a separator) in any spelling the file carries, a hybrid whose v1 file list and
v2 file tree do not name the same files in the same order with the same lengths, a total past
2^63-1, or a signature by a key that is not an Ed25519 point of large order. Run it alone with
``python tests/fuzz/fuzz_torrentfile.py tests/fuzz/corpus/torrentfile``."""

from __future__ import annotations

import json
import sys
from typing import Any

import atheris

with atheris.instrument_imports():
    from weightless.registry.entries import stored_meta
    from weightless.torrent import signing
    from weightless.torrent.bdecode import bdecode
    from weightless.torrent.metainfo import MAX_ITEMS, TorrentError, TorrentInfo, parse_torrent
    from weightless.wire.numbers import INT64_MAX
    from weightless.wire.text import unsafe_char


def _safe_name(raw: object, what: str) -> None:
    """A name as the file spells it (bytes, any spelling): what a client would show or write."""
    if not isinstance(raw, bytes):
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # a legacy spelling beside a UTF-8 one
    if text in ("", ".", "..") or "/" in text or "\\" in text or unsafe_char(text):
        raise AssertionError(f"{what} {text!r} was accepted")


def _spellings(info: dict[bytes, Any]) -> None:
    for key in (b"name", b"name.utf-8"):
        _safe_name(info.get(key), key.decode())
    for entry in info.get(b"files", []):
        for key in (b"path", b"path.utf-8"):
            for part in entry.get(key, []):
                _safe_name(part, key.decode())
    stack = [info.get(b"file tree", {})]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                if key:
                    _safe_name(key, "file tree name")
                stack.append(child)


def _tree_files(node: Any, prefix: tuple[bytes, ...], out: list[Any]) -> None:
    """A v2 file tree's files in order, (path, length), walked apart from the parser."""
    for key, child in node.items():
        if key == b"":
            out.append((prefix, child[b"length"], b"p" in child.get(b"attr", b"")))
        else:
            _tree_files(child, (*prefix, key), out)


def _v1_v2_agree(info: dict[bytes, Any], parsed: TorrentInfo) -> None:
    """A hybrid's v1 files holding data (not pads, not empty) are its v2 files holding data,
    in the same order, with the same paths and lengths."""
    if parsed.v1_info_hash is None or parsed.v2_info_hash is None:
        return
    if b"files" in info:
        v1 = [
            (tuple(e.get(b"path.utf-8", e.get(b"path"))), e[b"length"])
            for e in info[b"files"]
            if b"p" not in e.get(b"attr", b"") and e[b"length"] > 0
        ]
    else:
        v1 = [((info.get(b"name.utf-8", info.get(b"name")),), info[b"length"])]
        v1 = [f for f in v1 if f[1] > 0]
    tree: list[Any] = []
    _tree_files(info[b"file tree"], (), tree)
    v2 = [(path, length) for path, length, pad in tree if not pad and length > 0]
    if v1 != v2:
        raise AssertionError(f"a hybrid whose v1 files {v1} are not its v2 files {v2}")


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
    if info.total_size > INT64_MAX or any(not 0 <= n <= INT64_MAX for _, n in info.files):
        raise AssertionError(f"a length past 2^63-1: {info.total_size}")
    for path, _ in info.files:
        for part in path.split("/"):
            _safe_name(part.encode(), "file")
    _safe_name(info.name.encode(), "name")
    for signature in info.signatures:
        signing.check_public_key(signature.pub)  # BadKey is a crash here: it was accepted
    top, _ = bdecode(data, MAX_ITEMS)
    _spellings(top[b"info"])
    _v1_v2_agree(top[b"info"], info)
    meta = json.loads(stored_meta(data))  # what /meta stores and serves
    if meta["total_size"] != info.total_size:
        raise AssertionError("the stored view disagrees with the parse")


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
