"""Which files of a torrent ``get`` fetches: FILE arguments (exact paths), ``--include`` and
``--exclude`` globs, matched against a file's path inside the torrent as ``/meta`` lists it
(relative to the torrent's name, ``/``-separated; a single-file torrent's one file is its
name). Globs follow `fnmatch` (``*`` also matches ``/``), as ``hf download --include`` does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from weightless.client.errors import ClientError


@dataclass(frozen=True)
class Selection:
    """FILE arguments, include and exclude globs; empty means every file."""

    files: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        files: Sequence[str] | str | None = None,
        include: Sequence[str] | str | None = None,
        exclude: Sequence[str] | str | None = None,
    ) -> Selection:
        """From the API's arguments: a string is one item, None none."""
        return cls(_items(files), _items(include), _items(exclude))

    @property
    def everything(self) -> bool:
        return not (self.files or self.include or self.exclude)

    def pick(self, paths: Sequence[str], torrent: str) -> list[str]:
        """The selected paths, in the torrent's order. `ClientError` for a FILE the torrent
        does not have, or when nothing is selected (naming the patterns)."""
        listed = set(paths)
        missing = [f for f in self.files if _clean(f) not in listed]
        if missing:
            raise ClientError(
                f"{torrent!r} has no file {', '.join(repr(m) for m in missing)} "
                "(paths are relative to the torrent's name, as its file list shows them)"
            )
        wanted = {_clean(f) for f in self.files}
        chosen = [
            p
            for p in paths
            if (not (self.files or self.include) or p in wanted or _any(p, self.include))
            and not _any(p, self.exclude)
        ]
        if not chosen:
            said = [*self.files, *(f"--include {g}" for g in self.include)]
            said += [f"--exclude {g}" for g in self.exclude]
            raise ClientError(f"no file of {torrent!r} matches {' '.join(said)}")
        return chosen


def _items(value: Sequence[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _clean(path: str) -> str:
    return path.replace("\\", "/").strip("/")


def _any(path: str, globs: Sequence[str]) -> bool:
    return any(fnmatchcase(path, g) for g in globs)
