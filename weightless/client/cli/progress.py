"""What a transfer's status line says, from a `Status`: the state, bytes verified of the total,
the rate, the peers connected, an estimate of the time left, and, after `WAITING` seconds with
no peer, that it is waiting for peers and why (what the tracker lists, or its refusal in its
own words). Sizes and rates in binary units (`weightless.wire.units`). Pure: a status and the
seconds without a peer in, text out; registry and tracker text escaped with ``printable``."""

from __future__ import annotations

from weightless.client.transfer import Status
from weightless.wire.text import printable
from weightless.wire.units import human_rate, human_size

WAITING = 5.0  # seconds with no peer connected before the line says it is waiting for peers
_STATES = {"metadata": "fetching metadata of", "checking": "checking"}


def state(s: Status, verb: str) -> str:
    """The verb at the start of the line: ``downloading``, ``checking``, ``verified``..."""
    if s.state in _STATES:
        return _STATES[s.state]
    if s.state == "seeding":
        return "verified" if verb != "seeding" and not s.uploaded else "seeding"
    return "downloading"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def peers(s: Status, quiet: float, verb: str = "getting") -> str:
    """``3 peers (1 seeder)``; with none connected for ``quiet`` >= `WAITING` seconds,
    ``waiting for peers`` and why: the tracker's refusal, or the seeders it lists (a
    download waits for seeders; the leechers it lists include this client)."""
    if s.peers:
        return f"{_plural(s.peers, 'peer')} ({_plural(s.seeds, 'seeder')})"
    if s.tracker_error:
        return f"waiting for peers; the tracker says: {printable(s.tracker_error)}"
    if s.state == "seeding" and verb != "seeding":
        return ""  # downloaded: nobody is needed any more
    if quiet < WAITING:
        return "looking for peers"
    if verb != "seeding" and s.swarm_seeds == 0:
        return "waiting for peers (the tracker lists no seeder)"
    if verb != "seeding" and s.swarm_seeds > 0:
        listed = _plural(s.swarm_seeds, "seeder")
        return f"waiting for peers (the tracker lists {listed}; none has connected)"
    return "waiting for peers"


def time_left(seconds: float) -> str:
    """``0:01:05 left``; ``more than 4 days left`` beyond 100 hours."""
    whole = int(seconds)
    if whole >= 100 * 3600:
        return "more than 4 days left"
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d} left"


def left(s: Status) -> str:
    """The time left at the current rate; empty when nothing is moving or it is done."""
    eta = s.eta
    if eta is None or s.done >= s.total or s.state == "seeding":
        return ""
    return time_left(eta)


def numbers(s: Status, quiet: float, verb: str = "getting") -> str:
    """Everything after the bar, parts apart by two spaces."""
    parts = [f"{human_size(s.done)} of {human_size(s.total)}" if s.total else ""]
    if s.state in ("downloading", "metadata", "checking") or s.download_rate:
        parts.append(human_rate(s.download_rate))
    parts += [peers(s, quiet, verb), left(s)]
    if s.uploaded:
        parts.append(f"↑ {human_rate(s.upload_rate)}, {human_size(s.uploaded)} sent")
    return "  ".join(p for p in parts if p)
