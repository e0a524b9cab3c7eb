"""Tracker replies in bencode.

The announce reply has a fixed shape, so it is written by hand (about ten times faster than a
generic encoder); the rarer shapes go through bencode.py.
"""

from __future__ import annotations

from collections.abc import Iterable

import bencodepy

RATE_LIMITED = "Rate limit exceeded. Please slow down."


def failure(reason: str) -> bytes:
    data = reason.encode("utf-8")
    return b"d14:failure reason%d:%se" % (len(data), data)


def announce(
    interval: int,
    min_interval: int,
    complete: int,
    incomplete: int,
    downloaded: int,
    peers: bytes,
    peers6: bytes,
) -> bytes:
    """Compact reply (BEP 23, BEP 7): peers are joined pre-packed entries."""
    if peers6:
        return (
            b"d8:completei%de10:downloadedi%de10:incompletei%de8:intervali%de"
            b"12:min intervali%de5:peers%d:%s6:peers6%d:%se"
            % (
                complete,
                downloaded,
                incomplete,
                interval,
                min_interval,
                len(peers),
                peers,
                len(peers6),
                peers6,
            )
        )
    return (
        b"d8:completei%de10:downloadedi%de10:incompletei%de8:intervali%de"
        b"12:min intervali%de5:peers%d:%se"
        % (complete, downloaded, incomplete, interval, min_interval, len(peers), peers)
    )


def announce_dict_peers(
    interval: int,
    min_interval: int,
    complete: int,
    incomplete: int,
    downloaded: int,
    peers: Iterable[tuple[str, int, bytes | None]],
) -> bytes:
    """Non-compact reply (BEP 3): a list of dictionaries; peer id left out when it is None."""
    listed = []
    for ip, port, peer_id in peers:
        peer: dict[str, object] = {"ip": ip, "port": port}
        if peer_id is not None:
            peer["peer id"] = peer_id
        listed.append(peer)
    reply = {
        "complete": complete,
        "downloaded": downloaded,
        "incomplete": incomplete,
        "interval": interval,
        "min interval": min_interval,
        "peers": listed,
    }
    encoded: bytes = bencodepy.encode(reply)
    return encoded


def scrape(files: Iterable[tuple[bytes, int, int, int]]) -> bytes:
    """files: (info hash as requested, complete, downloaded, incomplete)."""
    parts = [b"d5:filesd"]
    for info_hash, complete, downloaded, incomplete in sorted(files):
        parts.append(
            b"%d:%sd8:completei%de10:downloadedi%de10:incompletei%dee"
            % (len(info_hash), info_hash, complete, downloaded, incomplete)
        )
    parts.append(b"ee")
    return b"".join(parts)
