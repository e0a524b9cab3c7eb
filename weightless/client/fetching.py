"""``get``: find the .torrent (the cache, else the registry, else peers by BEP 9), check it is
what was asked for, return data already complete in the cache at once, link files the cache
already holds by their BEP 52 ``pieces root``, and download only the selected files with one
libtorrent session. State lives in the cache directory (`weightless.client.cache`)."""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import libtorrent as lt

from weightless.client.cache import Cache, FileRecord, Record
from weightless.client.errors import ClientError, Unreachable
from weightless.client.pinning import Pins, pins_of
from weightless.client.selection import Selection
from weightless.client.torrents import Made, read_torrent
from weightless.client.trackers import DEFAULT_TRACKER, Tracker, env_passkey
from weightless.client.transfer import OnStatus, Settings, Status, Transfer
from weightless.wire.units import human_size

if TYPE_CHECKING:  # imported when the registry is asked: data in the cache needs neither
    from weightless.client.registry import Entry, Registry
    from weightless.client.resolve import Target

TrackerLike = Tracker | str
# a check sees the .torrent and the registry entry that `get` is about to fetch, before any
# data is written, and raises ClientError to refuse it
Check = Callable[[bytes | None, "Entry | None"], None]
Warn = Callable[[str], None]
WANTED, SKIPPED = 4, 0  # libtorrent file priorities


def tracker_of(tracker: TrackerLike | None) -> Tracker:
    """A `Tracker` from a URL, a `Tracker`, or ``WL_TRACKER`` (default localhost:8080)."""
    if isinstance(tracker, Tracker):
        return tracker
    return Tracker(tracker or os.environ.get("WL_TRACKER") or DEFAULT_TRACKER)


@dataclass(frozen=True)
class Fetched:
    """Data that is complete and verified: its path (``SAVE_PATH/NAME``), hashes, the bytes of
    the selected files, the payload bytes received from peers and web seeds in this run, the
    bytes taken from files already in the cache, and the selected paths (as /meta lists them)."""

    path: Path
    info_hash: str | None
    v1_info_hash: str | None
    bytes: int
    downloaded: int
    reused: int = 0
    files: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "info_hash": self.info_hash,
            "v1_info_hash": self.v1_info_hash,
            "bytes": self.bytes,
            "downloaded": self.downloaded,
            "reused": self.reused,
            "files": list(self.files),
        }


@dataclass(frozen=True)
class Layout:
    """A torrent's files as libtorrent lays them out: index, path inside the torrent (as /meta
    lists it), length and v2 ``pieces root`` (hex, None without one); pad files left out."""

    name: str
    single: bool
    files: tuple[tuple[int, str, int, str | None], ...]
    count: int  # files in libtorrent's list, pad files included

    @classmethod
    def of(cls, ti: Any) -> Layout:
        fs = ti.layout()
        name = ti.name()
        out = []
        for i in range(fs.num_files()):
            flags = fs.file_flags(i)
            if flags & lt.file_storage.flag_pad_file:
                continue
            if flags & lt.file_storage.flag_symlink:
                raise ClientError(
                    f"refusing {name!r}: {fs.file_path(i)} is a symbolic link "
                    "(it could point outside the download folder)"
                )
            path = fs.file_path(i).replace(os.sep, "/")
            rel = path if path == name else path.removeprefix(name + "/")
            length = fs.file_size(i)
            root = fs.root(i).to_bytes() if ti.info_hashes().has_v2() and length else None
            out.append((i, rel, length, root.hex() if root and any(root) else None))
        return cls(name, _single(ti), tuple(out), fs.num_files())

    @property
    def paths(self) -> list[str]:
        return [p for _, p, _, _ in self.files]

    def priorities(self, chosen: Sequence[str]) -> list[int]:
        wanted = set(chosen)
        prios = [SKIPPED] * self.count
        for i, path, _, _ in self.files:
            prios[i] = WANTED if path in wanted else SKIPPED
        return prios


def _single(ti: Any) -> bool:
    """A single-file torrent: its one file is its name (no folder)."""
    fs = ti.layout()
    return all(
        fs.file_path(i) == ti.name()
        for i in range(fs.num_files())
        if not fs.file_flags(i) & lt.file_storage.flag_pad_file
    )


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=4)


def _room(folder: Path, need: int) -> None:
    """Refuse at once when the folder's file system cannot hold ``need`` more bytes."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < need:
        raise ClientError(
            f"not enough space in {folder}: {human_size(need)} needed, {human_size(free)} free"
        )


def _on_disk(path: Path) -> int:
    try:
        return path.stat().st_blocks * 512 if path.is_file() else 0
    except OSError:
        return 0


def _hashes(v2: str | None, v1: str | None) -> Any:
    if v2 and v1:
        return lt.info_hash_t(lt.sha1_hash(bytes.fromhex(v1)), lt.sha256_hash(bytes.fromhex(v2)))
    if v2:
        return lt.info_hash_t(lt.sha256_hash(bytes.fromhex(v2)))
    return lt.info_hash_t(lt.sha1_hash(bytes.fromhex(v1 or "")))


def registry_torrent(registry: Registry, target: Target, pins: Pins, what: str) -> bytes | None:
    """The registry's .torrent for the target, or None when it stores none. `ClientError`
    before anything is fetched when the entry is not what ``what`` pins, and when the file's
    hashes are not the entry's or the pinned ones."""
    pins.check(target.info_hash, target.v1_info_hash, f"the registry's answer for {what}")
    if target.entry is None:
        return None
    data = registry.torrent(target.key)
    if data is None:
        return None
    made = read_torrent(data, f"the registry's .torrent of {target.key}")
    if (target.info_hash and made.info_hash != target.info_hash) or (
        target.v1_info_hash and made.v1_info_hash != target.v1_info_hash
    ):
        raise ClientError(f"the registry's .torrent of {target.key} has other info hashes")
    pins.check(made.info_hash, made.v1_info_hash, f"the registry's .torrent for {what}")
    return data


def _cached_torrent(cache: Cache, key: str | None, pins: Pins) -> Made | None:
    """The .torrent the cache keeps under ``key``, if it is still what ``pins`` asks for."""
    if key is None:
        return None
    data = cache.stored_torrent(key)
    if data is None:
        return None
    try:
        made = read_torrent(data, "the cached .torrent")
    except ClientError:
        return None
    if made.registry_hash != key or pins.refusal(made.info_hash, made.v1_info_hash):
        return None
    return made


@dataclass
class _Plan:
    """What one `fetch` works with once the torrent is known."""

    made: Made | None  # None: the metadata comes from peers (BEP 9)
    target: Target | None  # the registry's answer, None when the cache answered


def fetch(
    what: str,
    *,
    files: Sequence[str] | str | None = None,
    include: Sequence[str] | str | None = None,
    exclude: Sequence[str] | str | None = None,
    tracker: TrackerLike | None = None,
    output: str | os.PathLike[str] | None = None,
    offline: bool = False,
    verify: bool = False,
    passkey: str | None = None,
    settings: Settings | None = None,
    timeout: float | None = None,
    on_status: OnStatus | None = None,
    on_warning: Warn | None = None,
    check: Check | None = None,
    require_verified: bool = False,
    seed: bool = False,
    on_done: Callable[[Fetched], None] | None = None,
    cache: Cache | None = None,
) -> Fetched:
    """`get`, returning a `Fetched` (path, hashes, sizes, selected files) rather than the
    path alone. ``verify`` re-hashes data the cache holds as complete; ``on_warning`` gets
    one-line warnings (default: `warnings.warn`); ``cache`` defaults to ``WL_CACHE`` etc."""
    where = tracker_of(tracker)
    cache = cache or Cache.from_env()
    warn = on_warning or _warn
    selection = Selection.of(files, include, exclude)
    pins = pins_of(what)
    passkey = env_passkey(passkey)
    output_folder = None if output is None else Path(output)

    def folder_of(key: str) -> Path:
        return output_folder if output_folder is not None else cache.data_folder(key)

    def ready(made: Made) -> Fetched | None:
        """The data at once, when it is complete (``seed`` needs a session all the same)."""
        if verify or seed:
            return None
        return _complete(cache, made, folder_of(made.registry_hash), selection)

    # 1. a hash the cache holds (or, offline, a name resolved before): no network at all
    local = _local(cache, what, pins, where, offline)
    plan: _Plan
    if offline:
        if local is None:
            raise ClientError(
                f"{what} is not in the cache {cache.root} (--offline fetches nothing)"
            )
        done = ready(local)
        if done is not None:
            return _finish(done, on_done)
        if not verify:
            raise ClientError(
                f"{what}: the selected files are not complete in the cache {cache.root} "
                "(--offline fetches nothing)"
            )
        plan = _Plan(local, None)
    elif local is not None and not require_verified:
        done = ready(local)
        if done is not None:
            return _finish(done, on_done)
        plan = _Plan(local, None)
    else:
        # 2. the registry
        try:
            plan = _ask_registry(where, what, pins, require_verified, check)
        except Unreachable as e:
            fallback = _local(cache, what, pins, where, True)
            done = None if fallback is None or require_verified else ready(fallback)
            if done is None:
                raise
            warn(f"{e}; returning the copy complete in the cache")
            return _finish(done, on_done)
        if plan.made is not None:
            made = plan.made
            cache.remember_torrent(
                made.registry_hash, made.v1_info_hash if made.info_hash else None, made.data
            )
            if not pins:
                cache.remember_name(where.url, what.strip(), made.registry_hash)
            done = ready(made)
            if done is not None:
                return _finish(done, on_done)

    # 3. peers
    return _download(
        plan,
        what=what,
        pins=pins,
        where=where,
        cache=cache,
        selection=selection,
        folder_of=folder_of,
        verify=verify,
        passkey=passkey,
        settings=settings or Settings(),
        deadline=None if timeout is None else time.monotonic() + timeout,
        on_status=on_status,
        seed=seed,
        on_done=on_done,
        offline=offline,
    )


def _finish(fetched: Fetched, on_done: Callable[[Fetched], None] | None) -> Fetched:
    if on_done is not None:
        on_done(fetched)
    return fetched


def _local(cache: Cache, what: str, pins: Pins, where: Tracker, names: bool) -> Made | None:
    """The .torrent the cache holds for ``what``: by hash always, by name only when ``names``
    (offline, or the tracker unreachable): a name may point to a newer entry now."""
    if pins:
        return _cached_torrent(cache, cache.key_of(pins.key), pins)
    if names:
        return _cached_torrent(cache, cache.resolved_name(where.url, what.strip()), pins)
    return None


def _ask_registry(
    where: Tracker, what: str, pins: Pins, require_verified: bool, check: Check | None
) -> _Plan:
    from weightless.client import signatures
    from weightless.client.registry import Registry
    from weightless.client.resolve import resolve

    with Registry(where) as registry:
        target = resolve(registry, what)
        torrent = registry_torrent(registry, target, pins, what)
    # before anything is written: the registry's signature against the .torrent's hashes
    signatures.download_check(require_verified)(torrent, target.entry)
    if check is not None:
        check(torrent, target.entry)
    made = None if torrent is None else read_torrent(torrent, "the registry's .torrent")
    return _Plan(made, target)


def _complete(cache: Cache, made: Made, folder: Path, selection: Selection) -> Fetched | None:
    """The data, when the record says every selected file is complete and unchanged."""
    layout = Layout.of(lt.torrent_info(made.data))
    chosen = selection.pick(layout.paths, layout.name)
    save_path = folder.resolve()
    record = cache.record(made.registry_hash, save_path)
    if record is None or (record.data, record.single) != (save_path / layout.name, layout.single):
        return None  # the data is where the torrent names it, never where a record says
    if not all(record.intact(p) for p in chosen):
        return None
    lengths = {p: n for _, p, n, _ in layout.files}
    return Fetched(
        path=record.data,
        info_hash=made.info_hash,
        v1_info_hash=made.v1_info_hash,
        bytes=sum(lengths[p] for p in chosen),
        downloaded=0,
        reused=0,
        files=tuple(chosen),
    )


def _inside(folder: Path, path: Path) -> None:
    """Files land only under the chosen folder, whatever symbolic links are on the way."""
    base = folder.resolve()
    if not path.resolve().is_relative_to(base):
        raise ClientError(f"refusing to write {path}: it leads outside {base}")


def _reuse(cache: Cache, layout: Layout, chosen: Sequence[str], data: Path) -> int:
    """Link (hard link, else copy) into place every selected file that the cache holds
    complete under the same ``pieces root`` and length; returns the bytes taken."""
    wanted = set(chosen)
    taken = 0
    for _, path, length, root in layout.files:
        if root is None or path not in wanted:
            continue
        dest = data if layout.single else data.joinpath(*path.split("/"))
        source = cache.intact_copy(root, length)
        if source is None:
            continue
        try:
            if dest.exists() and dest.samefile(source):
                continue
            _inside(data.parent, dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.weightless-link")
            tmp.unlink(missing_ok=True)
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
            os.replace(tmp, dest)
        except OSError:
            continue  # not taken: it is downloaded instead
        taken += length
    return taken


def _download(
    plan: _Plan,
    *,
    what: str,
    pins: Pins,
    where: Tracker,
    cache: Cache,
    selection: Selection,
    folder_of: Callable[[str], Path],
    verify: bool,
    passkey: str | None,
    settings: Settings,
    deadline: float | None,
    on_status: OnStatus | None,
    seed: bool,
    on_done: Callable[[Fetched], None] | None,
    offline: bool = False,
) -> Fetched:
    if not offline:  # before anything is hashed or written: the tracker's refusal, at once
        from weightless.client.scrape import check_passkey  # here: a cached get loads no httpx

        check_passkey(where, passkey)
    made, target = plan.made, plan.target
    if made is not None:
        key = made.registry_hash
    else:
        assert target is not None
        key = target.info_hash or target.v1_info_hash or ""
        if not pins:  # a name: the entry's hashes pin the peers' metadata
            pins = Pins(target.info_hash, target.v1_info_hash)
    folder = folder_of(key)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ClientError(f"cannot make {folder}: {e.strerror or e}") from None
    save_path = folder.resolve()
    params = lt.add_torrent_params()
    params.save_path = str(save_path)
    params.part_file_dir = str(cache.parts_folder(key, save_path))
    resume = cache.resume_file(key, save_path)
    reused = 0
    layout: Layout | None = None
    chosen: list[str] = []
    if made is not None:
        ti = lt.torrent_info(made.data)
        layout = Layout.of(ti)
        chosen = selection.pick(layout.paths, layout.name)
        data = save_path / layout.name
        for path in chosen:
            _inside(save_path, data if layout.single else data.joinpath(*path.split("/")))
        cache.forget(key, save_path)
        reused = _reuse(cache, layout, chosen, data)
        params.ti = ti
        params.file_priorities = layout.priorities(chosen)
    else:  # BEP 9: nothing is written until the metadata is checked against the pins
        params.info_hashes = _hashes(pins.v2, pins.v1)
        params.flags |= lt.torrent_flags.upload_mode
        if target is not None and target.name:
            params.name = target.name
    if verify or reused:
        resume.unlink(missing_ok=True)  # libtorrent then checks the files on disk
    trackers = [] if offline else where.announce_urls(passkey)
    with Transfer(params, trackers, settings, resume) as transfer:
        transfer.wait_metadata(deadline, on_status)
        ti = transfer.torrent_info
        if layout is None:
            layout = Layout.of(ti)
            hashes = ti.info_hashes()
            pins.check(
                hashes.v2.to_bytes().hex() if hashes.has_v2() else None,
                hashes.v1.to_bytes().hex() if hashes.has_v1() else None,
                f"the metadata peers sent for {what}",
            )
            chosen = selection.pick(layout.paths, layout.name)
            data = save_path / layout.name
            for path in chosen:
                _inside(save_path, data if layout.single else data.joinpath(*path.split("/")))
            transfer.handle.prioritize_files(layout.priorities(chosen))
            transfer.handle.unset_flags(lt.torrent_flags.upload_mode)
            cache.remember_torrent(
                key,
                None,
                bytes(lt.bencode({b"info": lt.bdecode(ti.info_section())})),
            )
        data = save_path / layout.name
        lengths = {p: n for _, p, n, _ in layout.files}
        need = sum(lengths[p] for p in chosen) - sum(
            _on_disk(data if layout.single else data.joinpath(*p.split("/"))) for p in chosen
        )
        _room(folder, need)  # files linked from the cache are on disk already
        if offline and not transfer.wait_checked(deadline, on_status):
            raise ClientError(
                f"{what}: the selected files are not complete in the cache {cache.root} "
                "(--offline fetches nothing)"
            )
        status: Status = transfer.wait_complete(deadline, on_status)
        _record(cache, key, save_path, layout, data, transfer.file_progress())
        hashes = ti.info_hashes()
        fetched = Fetched(
            path=data,
            info_hash=hashes.v2.to_bytes().hex() if hashes.has_v2() else None,
            v1_info_hash=hashes.v1.to_bytes().hex() if hashes.has_v1() else None,
            bytes=sum(lengths[p] for p in chosen),
            downloaded=status.downloaded,
            reused=reused,
            files=tuple(chosen),
        )
        if on_done is not None:
            on_done(fetched)
        if seed:
            transfer.seed_forever(on_status)
    return fetched


def _record(
    cache: Cache, key: str, save_path: Path, layout: Layout, data: Path, progress: list[int]
) -> None:
    """Write down every file libtorrent has verified complete, as it is on disk now."""
    files = {}
    for i, path, length, root in layout.files:
        if i >= len(progress) or progress[i] != length:
            continue
        place = data if layout.single else data.joinpath(*path.split("/"))
        try:
            st = place.stat()
        except OSError:
            continue
        if st.st_size == length:
            files[path] = FileRecord(path, length, st.st_mtime_ns, root)
    cache.write_record(Record(key, data, layout.single, files), save_path)


def get(
    what: str,
    files: Sequence[str] | str | None = None,
    include: Sequence[str] | str | None = None,
    exclude: Sequence[str] | str | None = None,
    output: str | os.PathLike[str] | None = None,
    offline: bool = False,
    tracker: TrackerLike | None = None,
    passkey: str | None = None,
    **options: Any,
) -> Path:
    """Fetch a registry entry's data (or the selected files of it) and return its local path.

    ``what`` is a v2 (64 hex) or v1 (40 hex) info hash, a magnet link,
    ``PUBLISHER/NAME[@VERSION]`` or ``NAME[@VERSION]`` (the newest entry of the repository, or
    the given version: its label, or 8+ hex characters of an info hash). ``files`` (exact paths
    inside the torrent, as /meta lists them), ``include`` and ``exclude`` (`fnmatch` globs,
    ``*`` matching ``/`` too) select files; without them every file is fetched. The data goes to
    ``CACHE/data/HASH/NAME`` (``CACHE`` is ``WL_CACHE``, else ``$XDG_CACHE_HOME/weightless``,
    else ``~/.cache/weightless``), or ``output/NAME``. Data already complete and verified there
    is returned at once without any peer session; ``offline`` never touches the network; files
    the cache holds under the same v2 ``pieces root`` are linked, not downloaded. A hash (or
    magnet link) pins the .torrent: one whose info hashes are not the ones asked for is refused
    before any data is written. Returns only once every selected file is verified (SHA-1 and
    SHA-256 merkle checks by libtorrent).

    ``tracker`` is a URL or `Tracker` (default ``WL_TRACKER`` or ``http://localhost:8080``),
    ``passkey`` defaults to ``WL_PASSKEY`` (a tracker that needs one and refuses it, or its
    absence, stops the call at once with the tracker's words). Other options (those of
    `fetch`): ``verify`` (re-hash cached data), ``settings`` (`Settings`), ``timeout`` (seconds
    for the whole download),
    ``on_status`` (called with a `Status` 4 times a second), ``check``,
    ``require_verified``, ``seed``, ``on_done``, ``on_warning``. Raises `ClientError` (no
    such entry, entries of several publishers of that name, unreachable tracker with nothing cached,
    selection matching nothing, bad torrent, disk full, timeout).
    """
    return fetch(
        what,
        files=files,
        include=include,
        exclude=exclude,
        output=output,
        offline=offline,
        tracker=tracker,
        passkey=passkey,
        **options,
    ).path
