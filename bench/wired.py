"""The tracker's objects as ``twistd weightless`` wires them, for the benchmarks that drive
them inside one Python process: the options are parsed as the command line's are and the graph
is ``weightless.tap.wire``'s, so what a benchmark measures is what ships."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from weightless.cluster.seat import Seat
from weightless.config import Config
from weightless.registry.store import IStore
from weightless.tap import Options, Wiring, open_store, wire

# an open tracker with nothing between the load and the announce path (no rate limit), no
# swarm file, and UDP off unless a benchmark turns it on
BASE = ("--open", "--rate-limit", "0", "--swarm-file", "off", "--udp", "off")


def config(*options: str) -> Config:
    """The Config of ``twistd weightless`` with BASE and then ``options`` on its command line."""
    parsed = Options()
    parsed.parseOptions([*BASE, *options])
    assert parsed.config is not None
    return parsed.config


def wired(
    reactor: Any,
    *options: str,
    store: IStore | None = None,
    seat: Seat | None = None,
    rand: Callable[[], float] | None = None,
    store_timeout: float | None = None,
) -> Wiring:
    """One tracker process (``seat``: one worker of several) on ``reactor``; its store is
    ``store`` or the one ``--database`` names (not opened)."""
    c = config(*options)
    extra: dict[str, Any] = {} if store_timeout is None else {"store_timeout": store_timeout}
    store = store if store is not None else open_store(c, reactor)
    return wire(c, reactor, store, seat, rand=rand, **extra)
