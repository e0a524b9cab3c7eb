#!/usr/bin/env python3
"""The cost of a forwarded announce: two workers' routers in one process over a real Unix
socket, against the same announce answered locally.

Both ends run on one reactor and one core, so the time per forwarded announce is the whole CPU
cost of the hop (both workers' shares of it), which is what a forward takes from the tracker's
throughput. Requests are sent in windows of 64 at a time, as many clients would.

    .venv/bin/python bench/forward_cost.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from typing import Any
from urllib.parse import quote_from_bytes

from twisted.internet import defer, reactor

from weightless.cluster.ipc import Mesh
from weightless.cluster.owner import owner_of
from weightless.cluster.router import Router
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.catalog import Catalog
from weightless.tracker.core import Policy, Tracker
from weightless.tracker.swarm import SwarmStore


def worker(index: int, directory: str) -> Router:
    rng = random.Random(index)
    tracker = Tracker(
        Policy(open=True),
        Catalog(),
        SwarmStore(rng.random),
        PendingWrites(),
        None,
        None,
        rng.random,
    )
    mesh = Mesh(index, 2, directory, reactor)
    mesh.listen()
    return Router(mesh, tracker)


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
    a, b = worker(0, directory), worker(1, directory)
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
