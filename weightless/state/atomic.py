"""Writing a file so that a crash leaves either the old file or the new one, never a part.

The one way every file that is replaced whole is written, by the tracker (swarm snapshots, kept
writes, the UDP key) and by the `weightless` command (signed .torrent files, key files, resume
data): the bytes go to a temporary file in the same directory, which is flushed to disk, given
its mode and renamed over the target; then the directory is flushed so that the rename lasts.

Pure: the standard library only, no tracker, no reactor, so that the client may import it too.
The mode is always given, never left to the umask: `SECRET` for keys, `PUBLIC` for the rest.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable

SECRET = 0o600  # keys: read and written by the owner only
PUBLIC = 0o644  # everything else: the owner writes, anyone may read


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes | Iterable[bytes],
    mode: int,
    *,
    overwrite: bool = True,
) -> None:
    """Write ``data`` (bytes, or chunks of bytes) to ``path`` with exactly ``mode``: a crash
    or an exception at any point leaves the file as it was (or absent), and no temporary file
    behind. With ``overwrite=False`` an existing file is left as it is and `FileExistsError`
    raised (a key file is never replaced). OSError for anything else the system refuses."""
    target = os.fspath(path)
    directory, name = os.path.split(target)
    fd, tmp = tempfile.mkstemp(dir=directory or ".", prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, bytes | bytearray | memoryview):
                f.write(data)
            else:
                for chunk in data:
                    f.write(chunk)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # FileExistsError when there is a file: nothing replaced
            os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _sync_directory(directory or ".")


def _sync_directory(directory: str) -> None:
    """Flush a directory's entries (the rename) to disk; best effort: some file systems
    refuse to open or fsync a directory, and the file itself is already complete."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
