"""Whether a tracker will serve us, asked before any hashing or download: one HTTP scrape
(BEP 48) of an info hash that no torrent has, on the announce path the transfer will use
(``/{passkey}/scrape``, or ``/scrape`` without a passkey). A scrape has no effect on any
swarm, and the tracker checks the passkey before the hash, so a tracker that needs one says
so in its ``failure reason``; the answer is read within `weightless.client.http`'s bounds."""

from __future__ import annotations

from urllib.parse import quote

from weightless.client.errors import ClientError
from weightless.client.http import Bounded
from weightless.client.trackers import Tracker, hide_passkeys
from weightless.torrent.bdecode import BdecodeError, bdecode

DEADLINE = 10.0  # seconds for the scrape
MAX_ANSWER = 64 << 10  # a scrape of one hash is a few dozen bytes
NO_TORRENT = "%00" * 20  # an info hash no torrent has: the scrape changes nothing anywhere
HINT = "give --passkey (or WL_PASSKEY), or --user-id with TRACKER_SECRET"


def refusal(tracker: Tracker, passkey: str | None) -> str | None:
    """The tracker's ``failure reason`` when it refuses this passkey (or its absence), in its
    own words; None when it serves us, or cannot be asked (the transfer then finds out)."""
    path = f"/{quote(passkey, safe='')}/scrape" if passkey else "/scrape"
    https = tracker.url.startswith("https:")
    http = Bounded(f"the tracker at {tracker.url}", deadline=DEADLINE, https=https)
    try:
        answer = http.request(
            "GET", f"{tracker.url}{path}?info_hash={NO_TORRENT}", limit=MAX_ANSWER
        )
    except ClientError:
        return None
    finally:
        http.close()
    if answer.status != 200:
        return None
    try:
        value, _ = bdecode(answer.body, 1000)
    except BdecodeError:
        return None
    reason = value.get(b"failure reason") if isinstance(value, dict) else None
    if not isinstance(reason, bytes):
        return None
    text = reason.decode("utf-8", "replace")
    return text if "passkey" in text.lower() else None


def check_passkey(tracker: Tracker, passkey: str | None) -> None:
    """Stop at once, with the tracker's words, when it refuses this passkey or needs one.
    Raises `ClientError`."""
    reason = refusal(tracker, passkey)
    if reason is None:
        return
    hint = f" ({HINT})" if not passkey else ""
    raise ClientError(hide_passkeys(f"the tracker at {tracker.url} refused: {reason}{hint}"))
