"""Which files of a folder go into a torrent that `create` or `publish` makes.

- Left out always: the folders ``.git``, ``.hg``, ``.svn`` and ``__pycache__`` (at any depth,
  with everything under them) and the files ``.DS_Store`` and ``Thumbs.db``.
- Left out when asked: every file or folder whose path inside the folder (``/``-separated,
  as ``/meta`` lists it) matches an ``exclude`` glob; globs use ``fnmatch`` rules (``*`` also
  matches ``/``), as ``get --include/--exclude`` do. A folder that matches is left out with
  everything under it: ``--exclude logs`` leaves out ``logs/``.
- Symbolic links: one to a file inside the folder is taken as a regular file (its content is
  hashed under the link's name). One that points outside the folder, one to a folder, and
  one that points nowhere are refused, naming the link, unless excluded; so are other
  special files (FIFOs, sockets, devices), which cannot be hashed.

Reads the file system (names and `lstat`), not the files' contents.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path

from weightless.client.errors import ClientError

IGNORED_FOLDERS = frozenset({".git", ".hg", ".svn", "__pycache__"})
IGNORED_FILES = frozenset({".DS_Store", "Thumbs.db"})


def excluded(relative: str, globs: Sequence[str]) -> bool:
    """Whether ``relative`` (``a/b/c``) or a folder above it matches one of ``globs``."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatchcase(p, glob) for glob in globs for p in prefixes)


def _inside(target: str, root: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def selected(folder: Path, exclude: Sequence[str] = ()) -> set[str]:
    """The absolute paths (as ``folder`` is spelled, then joined) of the folder itself, the
    folders to walk and the files to take. Raises `ClientError` for a link out of the folder,
    a link to a folder, a dangling link or a special file."""
    root = os.path.realpath(folder)
    top = os.fspath(folder)
    keep = {top}
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        relative_dir = os.path.relpath(dirpath, top)
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            relative = name if relative_dir == "." else f"{relative_dir}/{name}"
            relative = relative.replace(os.sep, "/")
            is_dir = name in dirnames
            if (is_dir and name in IGNORED_FOLDERS) or (not is_dir and name in IGNORED_FILES):
                continue
            if excluded(relative, exclude):
                continue
            _check(path, relative, root, folder)
            keep.add(path)
        # do not walk what was left out (os.walk goes into what stays in dirnames)
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) in keep]
    return keep


def _check(path: str, relative: str, root: str, folder: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except OSError as e:
        raise ClientError(f"cannot read {path}: {e.strerror or e}") from None
    if stat.S_ISLNK(mode):
        target = os.path.realpath(path)
        if not _inside(target, root):
            raise ClientError(
                f"{relative} in {folder} is a symbolic link to {target}, outside the folder: "
                f"refused (copy the file in, or leave it out with --exclude {relative!r})"
            )
        if not os.path.exists(target):
            raise ClientError(f"{relative} in {folder} is a symbolic link that points nowhere")
        if os.path.isdir(target):
            raise ClientError(
                f"{relative} in {folder} is a symbolic link to a folder: refused (its files "
                f"are in the torrent under their own names; --exclude {relative!r})"
            )
        mode = os.stat(target).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ClientError(
            f"{relative} in {folder} is not a regular file (a FIFO, socket or device): "
            f"leave it out with --exclude {relative!r}"
        )
