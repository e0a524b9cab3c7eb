"""Where swarm snapshots live on disk: written on a clean stop, read back at start."""

from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger

from weightless.state.atomic import PUBLIC, write_atomic
from weightless.state.statefile import set_aside
from weightless.tracker.snapshot import dump, load
from weightless.tracker.swarm import SwarmStore


class SwarmFile:
    log = Logger()

    def __init__(
        self,
        path: str,
        swarms: SwarmStore,
        peer_ttl: int,
        clock: Callable[[], float],
        keep: Callable[[bytes], bool] = lambda key: True,
        write_path: str | None = None,
    ) -> None:
        self.path = path
        self.write_path = write_path or path
        self.swarms = swarms
        self.peer_ttl = peer_ttl
        self.clock = clock
        self.keep = keep

    def restore(self) -> int:
        """Load the peers of the last clean stop that are not past --peer-ttl yet. A damaged
        file is set aside as NAME.corrupt (the swarms it held up to the damage are kept)."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return 0
        try:
            restored = load(data, self.swarms, int(self.clock() - self.peer_ttl), self.keep)
        except Exception as e:  # SnapshotError, or anything else a damaged file leads to
            set_aside(self.path, f"{type(e).__name__}: {e}")
            return 0
        self.log.info("restored {n} peers from {path}", n=restored, path=self.path)
        return restored

    def save(self) -> None:
        """Write every swarm atomically (a crash mid-write leaves the previous file)."""
        write_atomic(self.write_path, dump(self.swarms), PUBLIC)
        self.log.info(
            "saved {n} peers of {s} swarms to {path}",
            n=self.swarms.peer_count,
            s=len(self.swarms.swarms),
            path=self.write_path,
        )
