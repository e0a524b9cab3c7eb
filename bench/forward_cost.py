#!/usr/bin/env python3
"""The cost of a forwarded announce: two workers, wired as ``weightless.tap`` wires a worker of
``--workers 2``, in one process over a real Unix socket, against the same announce answered
locally.

Both ends run on one reactor and one core, so the time per forwarded announce is the whole CPU
cost of the hop (both workers' shares of it), which is what a forward takes from the tracker's
throughput. Requests are sent in windows of 64 at a time, as many clients would.

    .venv/bin/python bench/forward_cost.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import tempfile
import time
from typing import Any
from urllib.parse import quote_from_bytes

from twisted.internet import defer, reactor
from wired import wired

from weightless.cluster import sharedcount
from weightless.cluster.owner import owner_of
from weightless.cluster.router import Router
from weightless.cluster.seat import Seat
from weightless.cluster.sharedlimit import table_size


def seats(directory: str, workers: int = 2) -> list[Seat]:
    """What a supervisor hands its workers: the shared tables and, for each, its place. No
    listening sockets: the benchmark calls the routers itself."""
    with open(os.path.join(directory, "ratelimit"), "wb") as f:
        f.truncate(table_size())
    with open(os.path.join(directory, "connections"), "wb") as f:
        f.truncate(sharedcount.table_size(workers))
    secret = os.urandom(32).hex()
    return [
        Seat(i, workers, directory, -1, socket.AF_INET, None, socket.AF_INET, secret, os.getpid())
        for i in range(workers)
    ]


def worker(seat: Seat) -> Router:
    w = wired(reactor, seat=seat, rand=random.Random(seat.index).random)
    assert w.router is not None
    w.router.mesh.listen()
    return w.router


def queries(owner: int, n: int) -> list[bytes]:
    rng = random.Random(owner)
    hashes = [h for h in (rng.randbytes(20) for _ in range(4000)) if owner_of(h, 2) == owner]
    return [
        b"info_hash=%s&peer_id=-XX0001-%012d&port=%d&left=%d&numwant=50"
        % (quote_from_bytes(hashes[i % 500]).encode(), i % 20000, 1024 + i % 20000, i % 7)
        for i in range(n)
    ]


async def run(n: int) -> None:
    directory = tempfile.mkdtemp(prefix="weightless-bench-")
    a, b = (worker(seat) for seat in seats(directory))
    results: dict[str, float] = {}
    for label, batch in (("local", queries(0, n)), ("forwarded", queries(1, n))):
        for warm in (True, False):
            started = time.perf_counter()
            for at in range(0, len(batch), 64):
                answers: list[Any] = [
                    a.http_announce(q, None, "10.0.0.1", 1000.0) for q in batch[at : at + 64]
                ]
                pending = [x for x in answers if isinstance(x, defer.Deferred)]
                if pending:
                    await defer.gatherResults(pending)
            if not warm:
                results[label] = (time.perf_counter() - started) / len(batch) * 1e6
    print(
        f"local_us={results['local']:.1f} forwarded_us={results['forwarded']:.1f} "
        f"hop_cost_us={results['forwarded'] - results['local']:.1f} "
        f"(per announce, CPU of both workers together)"
    )
    for r in (a, b):
        await r.mesh.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    n = ap.parse_args().requests
    defer.ensureDeferred(run(n)).addBoth(lambda _: reactor.stop())  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
