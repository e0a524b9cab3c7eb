"""Make .torrent files with libtorrent: hybrid v1+v2 by default (BEP 52 piece layers, BEP 47
pad files aligning every file to a piece), or v1-only / v2-only."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import libtorrent as lt

from weightless.client.contents import selected
from weightless.client.errors import ClientError
from weightless.state.atomic import PUBLIC, write_atomic
from weightless.torrent.magnet import magnet_uri
from weightless.torrent.metainfo import TorrentError, TorrentInfo, parse_torrent

CREATOR = "weightless"
Hashed = Callable[[int, int], None]  # (bytes hashed so far, bytes to hash in all)


@dataclass(frozen=True)
class Made:
    """A .torrent as bytes, with what was read from those exact bytes."""

    data: bytes
    info: TorrentInfo

    @property
    def info_hash(self) -> str | None:
        """The v2 info hash, 64 hex (None for a v1-only torrent)."""
        return self.info.v2_info_hash.hex() if self.info.v2_info_hash else None

    @property
    def v1_info_hash(self) -> str | None:
        """The v1 info hash, 40 hex (None for a v2-only torrent)."""
        return self.info.v1_info_hash_hex

    @property
    def registry_hash(self) -> str:
        """The registry's key for it: the v2 hash, else the v1 hash."""
        return self.info.info_hash_hex

    def magnet(self, tracker_announce: str) -> str:
        """The hybrid magnet link: ``xt=urn:btih:{v1}&xt=urn:btmh:1220{v2}&dn=NAME&tr=URL``
        (only the hashes the torrent has, one ``tr``)."""
        return magnet_uri(self.info.name, self.info_hash, self.v1_info_hash, [tracker_announce])

    @property
    def kind(self) -> str:
        if self.info_hash and self.v1_info_hash:
            return "hybrid v1+v2"
        return "v2-only" if self.info_hash else "v1-only"


def read_torrent(data: bytes, where: str) -> Made:
    """Check a .torrent's bytes (`parse_torrent`, then libtorrent loads it); `ClientError`
    naming ``where`` if either refuses it."""
    try:
        info = parse_torrent(data)
        lt.torrent_info(data)
    except TorrentError as e:
        raise ClientError(f"{where} is not a valid torrent file: {e}") from None
    except RuntimeError as e:
        raise ClientError(f"{where} is not a valid torrent file: {e}") from None
    return Made(data, info)


def load_torrent(path: Path) -> Made:
    """Read and check a .torrent file; `ClientError` if unreadable or invalid."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ClientError(f"cannot read {path}: {e.strerror or e}") from None
    return read_torrent(data, str(path))


def write_torrent(path: Path, data: bytes, mode: int = PUBLIC) -> None:
    """Write a .torrent file whole (a crash leaves the old file, or none) with ``mode``;
    `ClientError` when the system refuses."""
    try:
        write_atomic(path, data, mode)
    except OSError as e:
        raise ClientError(f"cannot write {path}: {e.strerror or e}") from None


def create_torrent(
    path: Path,
    *,
    trackers: list[str],
    piece_length: int = 0,
    v1_only: bool = False,
    v2_only: bool = False,
    name: str | None = None,
    web_seeds: tuple[str, ...] = (),
    private: bool = False,
    comment: str | None = None,
    source: str | None = None,
    on_hashed: Hashed | None = None,
    exclude: Sequence[str] = (),
) -> Made:
    """Hash the file or folder at ``path`` into a .torrent (one tier of ``trackers``).

    ``piece_length`` in bytes, 0 = libtorrent's rule (from 16 KiB for 2.6 MB up to 8 MiB for
    700 GB; about 2*sqrt(size)/20 pieces); v2 and hybrid need a power of two of at least
    16 KiB. ``name`` renames the top of the torrent (default: the file or folder name).
    ``web_seeds`` are BEP 19 ``url-list`` URLs. ``source`` goes in the info dictionary (so it
    changes the info hashes, as private trackers use it). ``on_hashed(done, total)`` is called
    after each piece, in bytes. Hashing runs on libtorrent's hashing threads. A folder's files
    are chosen by `weightless.client.contents` (``.git/`` and the like left out, ``exclude``
    globs, symbolic links out of the folder refused).
    Raises `ClientError` for a missing path, no data, a bad piece length, a link out of the
    folder, or a read error.
    """
    if v1_only and v2_only:
        raise ClientError("--v1-only and --v2-only exclude each other")
    path = Path(path)
    if not path.exists():
        raise ClientError(f"{path}: no such file or folder")
    path = path.resolve()
    if path.is_dir():
        keep = selected(path, exclude)
        files = lt.list_files(str(path), lambda p: os.path.normpath(p) in keep)
    else:
        files = lt.list_files(str(path))
    if not files or sum(f.size for f in files) == 0:
        raise ClientError(f"{path}: a torrent needs at least one non-empty file")
    if piece_length and (piece_length < 16384 or piece_length & (piece_length - 1)):
        raise ClientError("piece length must be a power of two of at least 16 KiB")
    flags = lt.create_torrent.v1_only if v1_only else lt.create_torrent.v2_only if v2_only else 0
    try:
        ct = lt.create_torrent(files, piece_length, flags)
    except RuntimeError as e:
        raise ClientError(f"cannot make a torrent of {path}: {e}") from None
    for url in trackers:
        ct.add_tracker(url, 0)
    for url in web_seeds:
        ct.add_url_seed(url)
    ct.set_priv(private)
    ct.set_creator(CREATOR)
    if comment:
        ct.set_comment(comment)

    storage = ct.files()
    total, length = storage.total_size(), ct.piece_length()
    done = [0]

    def hashed(piece: int) -> None:
        done[0] += 1
        if on_hashed is not None:
            on_hashed(min(total, done[0] * length), total)

    try:
        lt.set_piece_hashes(ct, str(path.parent), hashed)
    except RuntimeError as e:
        raise ClientError(f"cannot read {path}: {e}") from None
    torrent = ct.generate()
    info = torrent[b"info"]
    if name is not None and name != path.name:
        _rename(info, path.name, name, single=storage.num_files() == 1 and path.is_file())
    if source:
        info[b"source"] = source.encode()
    return read_torrent(bytes(lt.bencode(torrent)), str(path))


def _rename(info: dict[bytes, object], old: str, new: str, single: bool) -> None:
    """A new top name: the ``name`` key and, for one file, the key of the v2 file tree."""
    if not new or new in (".", "..") or "/" in new or "\\" in new:
        raise ClientError(f"torrent name {new!r} must be a plain file name")
    info[b"name"] = new.encode()
    tree = info.get(b"file tree")
    if single and isinstance(tree, dict):
        info[b"file tree"] = {new.encode(): tree[old.encode()]}
