"""The client's cache directory: where downloads go by default and where the client keeps its
own state, never inside a download folder (a torrent can write there, and names its files).

Layout (``CACHE`` is ``$WL_CACHE``, else ``$XDG_CACHE_HOME/weightless``, else
``~/.cache/weightless``)::

    CACHE/data/HASH/NAME                  the data of a torrent fetched without -o
    CACHE/state/HASH/torrent              the .torrent, checked against HASH when written
    CACHE/state/HASH/SPOT/resume          libtorrent's resume data for one save path
    CACHE/state/HASH/SPOT/record.json     the files verified there (sizes, mtimes, roots)
    CACHE/state/HASH/SPOT/parts/          libtorrent's part file (pieces shared with files
                                          that were not selected)
    CACHE/state/v1/V1HEX                  the registry hash of a hybrid torrent's v1 hash
    CACHE/state/names/DIGEST.json         a name resolved on a tracker, for offline use

HASH is the v2 info hash (hex), or the v1 one of a v1-only torrent; SPOT is a digest of the
save path. A record is written after libtorrent has verified the files; it is believed only
while every file it names has the size and modification time it had then, and only when it
names data in the save path it is kept for (an edited record pointing elsewhere is no record).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weightless.client.errors import ClientError
from weightless.state.atomic import PUBLIC, write_atomic

_HEX = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
RECORD_VERSION = 1


def cache_root(environ: Mapping[str, str]) -> Path:
    """``$WL_CACHE``, else ``$XDG_CACHE_HOME/weightless``, else ``~/.cache/weightless``."""
    if environ.get("WL_CACHE"):
        return Path(environ["WL_CACHE"]).expanduser()
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]).expanduser() / "weightless"
    home = environ.get("HOME")
    return (Path(home) if home else Path.home()) / ".cache" / "weightless"


@dataclass(frozen=True)
class FileRecord:
    """One verified file: its path inside the torrent (as /meta lists it), length in bytes,
    modification time (ns) when verified, and its BEP 52 ``pieces root`` (hex; None for a
    v1-only torrent or an empty file)."""

    path: str
    length: int
    mtime_ns: int
    root: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "length": self.length,
            "mtime_ns": self.mtime_ns,
            "root": self.root,
        }


@dataclass(frozen=True)
class Record:
    """The files verified in one save path of one torrent. ``data`` is the data path
    (SAVE_PATH/NAME); a file's place on disk is `Record.place`."""

    key: str
    data: Path
    single: bool  # a single-file torrent: ``data`` is the file itself
    files: dict[str, FileRecord]

    def place(self, path: str) -> Path:
        return self.data if self.single else self.data.joinpath(*path.split("/"))

    def intact(self, path: str) -> bool:
        """The file is still as it was verified: same size, same modification time."""
        found = self.files.get(path)
        if found is None:
            return False
        try:
            st = self.place(path).stat()
        except OSError:
            return False
        return st.st_size == found.length and st.st_mtime_ns == found.mtime_ns

    def encode(self) -> bytes:
        return json.dumps(
            {
                "version": RECORD_VERSION,
                "key": self.key,
                "data": str(self.data),
                "single": self.single,
                "files": [f.as_json() for f in self.files.values()],
            },
            ensure_ascii=False,
        ).encode()


def decode_record(raw: bytes) -> Record | None:
    """A record from its JSON, or None for anything else (a damaged record is no record)."""
    try:
        obj = json.loads(raw)
        if obj.get("version") != RECORD_VERSION:
            return None
        files = {}
        for f in obj["files"]:
            root = f["root"]
            if not (_relative(f["path"]) and isinstance(f["length"], int)):
                return None
            if not isinstance(f["mtime_ns"], int) or not (root is None or isinstance(root, str)):
                return None
            files[f["path"]] = FileRecord(f["path"], f["length"], f["mtime_ns"], root)
        data = Path(obj["data"])
        if not data.is_absolute() or data.name in ("", ".", ".."):
            return None
        return Record(str(obj["key"]), data, bool(obj["single"]), files)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _relative(path: object) -> bool:
    """A file's path inside a torrent as a record may name it: relative, no empty, ``.`` or
    ``..`` part, so that it stays inside the record's data."""
    return isinstance(path, str) and all(p not in ("", ".", "..") for p in path.split("/"))


@dataclass(frozen=True)
class Cache:
    """Paths of the cache directory (see the module's docstring) and the records in it."""

    root: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Cache:
        return cls(cache_root(os.environ if environ is None else environ))

    @property
    def state(self) -> Path:
        return self.root / "state"

    def data_folder(self, key: str) -> Path:
        """Where a torrent's data goes without ``-o``: CACHE/data/HASH (it holds NAME)."""
        return self.root / "data" / _key(key)

    def torrent_file(self, key: str) -> Path:
        return self.state / _key(key) / "torrent"

    def spot(self, key: str, save_path: Path) -> Path:
        """The state folder of one torrent in one save path."""
        digest = hashlib.sha256(os.fsencode(str(save_path))).hexdigest()[:24]
        return self.state / _key(key) / digest

    def resume_file(self, key: str, save_path: Path) -> Path:
        return self.spot(key, save_path) / "resume"

    def parts_folder(self, key: str, save_path: Path) -> Path:
        return self.spot(key, save_path) / "parts"

    def record_file(self, key: str, save_path: Path) -> Path:
        return self.spot(key, save_path) / "record.json"

    # -- records

    def record(self, key: str, save_path: Path) -> Record | None:
        try:
            raw = self.record_file(key, save_path).read_bytes()
        except OSError:
            return None
        found = decode_record(raw)
        if found is None or found.key != key or found.data.parent != save_path:
            return None  # a record names data only in the save path it is kept for
        return found

    def write_record(self, record: Record, save_path: Path) -> None:
        """Written whole or not at all; the cache is an optimisation, so a failure is quiet."""
        target = self.record_file(record.key, save_path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, record.encode(), PUBLIC)
        except OSError:
            pass

    def forget(self, key: str, save_path: Path) -> None:
        """Drop the record (before the files it names change)."""
        with contextlib.suppress(OSError):
            self.record_file(key, save_path).unlink()

    def records(self) -> Iterator[Record]:
        """Every record in the cache (any torrent, any save path)."""
        try:
            tops = list(self.state.iterdir())
        except OSError:
            return
        for top in tops:
            if not _HEX.fullmatch(top.name):
                continue
            for found in top.glob("*/record.json"):
                try:
                    record = decode_record(found.read_bytes())
                except OSError:
                    continue
                if (
                    record is not None
                    and record.key == top.name
                    and found.parent == self.spot(record.key, record.data.parent)
                ):
                    yield record  # kept in the state folder of the save path it names

    def intact_copy(self, root: str, length: int) -> Path | None:
        """A file complete in the cache with this v2 ``pieces root`` and length, still as it
        was verified, or None."""
        for record in self.records():
            for f in record.files.values():
                if f.root == root and f.length == length and record.intact(f.path):
                    return record.place(f.path)
        return None

    # -- hashes and names

    def key_of(self, digest: str) -> str:
        """The registry hash (v2, else v1) of a v2 or v1 hex hash, as far as the cache knows:
        a v1 hash of a hybrid fetched before maps to its v2 hash."""
        digest = digest.lower()
        if len(digest) == 40:
            try:
                mapped = (self.state / "v1" / digest).read_text().strip()
            except OSError:
                return digest
            if _HEX.fullmatch(mapped) and len(mapped) == 64:
                return mapped
        return digest

    def remember_torrent(self, key: str, v1: str | None, data: bytes) -> None:
        """Keep a .torrent (already checked against ``key``) and the v1 alias of a hybrid."""
        try:
            _write(self.torrent_file(key), data)
            if v1 and v1 != key:
                _write(self.state / "v1" / _key(v1), key.encode())
        except OSError as e:
            raise ClientError(f"cannot write to the cache {self.root}: {e.strerror or e}") from None

    def stored_torrent(self, key: str) -> bytes | None:
        try:
            return self.torrent_file(key).read_bytes()
        except OSError:
            return None

    def _name_file(self, tracker: str, name: str) -> Path:
        digest = hashlib.sha256(f"{tracker}\n{name}".encode()).hexdigest()[:32]
        return self.state / "names" / f"{digest}.json"

    def remember_name(self, tracker: str, name: str, key: str) -> None:
        body = {"tracker": tracker, "name": name, "info_hash": key}
        with contextlib.suppress(OSError):
            _write(self._name_file(tracker, name), json.dumps(body, ensure_ascii=False).encode())

    def resolved_name(self, tracker: str, name: str) -> str | None:
        """The registry hash ``name`` was resolved to on ``tracker`` before, or None."""
        try:
            obj = json.loads(self._name_file(tracker, name).read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(obj, dict) or obj.get("tracker") != tracker or obj.get("name") != name:
            return None
        key = obj.get("info_hash")
        return key if isinstance(key, str) and _HEX.fullmatch(key) else None


def _key(key: str) -> str:
    """A hash used as a folder name: refuse anything but lowercase hex of the two lengths."""
    if not _HEX.fullmatch(key):
        raise ClientError(f"not an info hash: {key!r}")
    return key


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, PUBLIC)
