"""Tracker URLs: which action a request path names, and the passkey in it.

Pure: the request target's bytes in, (action, passkey, query) out. The HTTP front and the UDP
tracker (BEP 41 URL data) both read tracker URLs with it. The forms, as real clients
write them:

    /announce   /announce/   /announce/{passkey}   /{passkey}/announce
    /scrape     /scrape/     /scrape/{passkey}     /{passkey}/scrape

The last form is the one clients can derive a scrape URL from: they replace a last path
segment ``announce`` with ``scrape``."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from urllib.parse import unquote_to_bytes

ANNOUNCE = b"announce"
SCRAPE = b"scrape"

# Where `twistd weightless` serves by default: the `weightless` command's default --tracker, and
# the tracker the web pages leave out of the `weightless get` command they show.
DEFAULT_TRACKER = "http://localhost:8080"


def get_command(info_hash: str, tracker_url: str, files: Sequence[str] = ()) -> str:
    """The `weightless get` command line that fetches ``info_hash`` (or only ``files``, paths
    inside the torrent, quoted for a shell) from the tracker at ``tracker_url`` (``--tracker``
    left out for the default one)."""
    selected = "".join(f" {shlex.quote(path)}" for path in files)
    flag = "" if tracker_url == DEFAULT_TRACKER else f" --tracker {tracker_url}"
    return f"weightless get {info_hash}{selected}{flag}"


def route(target: bytes) -> tuple[bytes, bytes | None, bytes] | None:
    """(action, passkey, query) of a tracker URL (``announce`` or ``scrape``; passkey None
    when the URL has none), or None for any other URL."""
    path, _, query = target.partition(b"?")
    if path.startswith(b"/announce"):
        action, rest = ANNOUNCE, path[9:]
    elif path.startswith(b"/scrape"):
        action, rest = SCRAPE, path[7:]
    else:
        return _passkey_first(path, query)
    if not rest or rest == b"/":
        return action, None, query
    if rest[0:1] != b"/" or b"/" in rest[1:]:
        return _passkey_first(path, query)  # a passkey may begin with "announce"
    return action, _unquote(rest[1:]), query


def _passkey_first(path: bytes, query: bytes) -> tuple[bytes, bytes | None, bytes] | None:
    """``/{passkey}/announce`` or ``/{passkey}/scrape``."""
    slash = path.find(b"/", 1)
    if slash < 2:  # no second segment, or an empty passkey
        return None
    action = path[slash + 1 :]
    if action != ANNOUNCE and action != SCRAPE:
        return None
    return action, _unquote(path[1:slash]), query


def _unquote(passkey: bytes) -> bytes:
    return unquote_to_bytes(passkey) if b"%" in passkey else passkey
