"""The key of UDP connection ids, kept in a file so that it survives restarts.

Clients cache a connection id for minutes (libtorrent for a whole process, across an error
reply). With a new key at every start, each of them would be refused until its cache expires:
a restart that keeps the swarms would still cut UDP clients off for a minute or more."""

from __future__ import annotations

import os

from weightless.state.atomic import SECRET, write_atomic
from weightless.state.statefile import set_aside

KEY_BYTES = 32


def load_or_create(path: str) -> bytes:
    """The key in ``path``, made (readable by the owner only) when there is none yet; a file
    of the wrong size is set aside as ``NAME.corrupt`` and a new key made. OSError when the
    file cannot be read or written at all (a directory, no permission)."""
    try:
        with open(path, "rb") as f:
            key = f.read(KEY_BYTES + 1)
        if len(key) == KEY_BYTES:
            return key
        set_aside(path, f"{len(key)} bytes where a key has {KEY_BYTES}")
    except FileNotFoundError:
        pass
    key = os.urandom(KEY_BYTES)
    write_atomic(path, key, SECRET)
    return key
