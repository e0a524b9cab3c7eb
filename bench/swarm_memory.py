#!/usr/bin/env python3
"""Swarm memory per peer and expiry pauses, at a million peers.

Fills the SwarmStore of a tracker wired as ``weightless.tap`` wires it directly (no network)
with N peers over S swarms (Zipf-like sizes, 10% seeders, 5% IPv6), reports bytes per peer from
the process's RSS growth and tracemalloc, then runs a full expiry pass the way the tracker does
(slices of SWEEP_BUDGET peers, one per reactor turn, through the tracker's own
Maintenance.sweep_slice) and reports the longest slice: the longest the reactor is blocked.

    .venv/bin/python bench/swarm_memory.py [--peers 1000000] [--swarms 10000]
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import time
import tracemalloc

from twisted.internet.task import Clock
from wired import wired


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", type=int, default=1_000_000)
    ap.add_argument("--swarms", type=int, default=10_000)
    ap.add_argument("--tracemalloc", action="store_true", help="also count with tracemalloc")
    a = ap.parse_args()

    rng = random.Random(1)
    clock = Clock()
    w = wired(clock, rand=rng.random)
    keys = [rng.randbytes(20) for _ in range(a.swarms)]
    weights = [1 / (i + 1) for i in range(a.swarms)]
    picks = rng.choices(range(a.swarms), weights, k=a.peers)
    gc.collect()
    if a.tracemalloc:
        tracemalloc.start()
    before = rss_bytes()
    store = w.swarms
    t0 = time.perf_counter()
    for i, s in enumerate(picks):
        if i % 20 == 0:
            addr = b"\x20\x01" + i.to_bytes(14, "big") + b"\x1a\xe1"
        else:
            addr = i.to_bytes(4, "big") + (1024 + i % 60000).to_bytes(2, "big")
        store.put(keys[s], addr, b"-XX0001-%012d" % i, i % 10 == 0, 1000 + i % 2)
    fill = time.perf_counter() - t0
    gc.collect()
    grown = rss_bytes() - before
    traced = tracemalloc.get_traced_memory()[0] if a.tracemalloc else 0
    tracemalloc.stop()
    print(f"peers={store.peer_count} swarms={len(store.swarms)} fill_s={fill:.1f}")
    print(f"rss_bytes_per_peer={grown / store.peer_count:.1f}", end="")
    print(f" tracemalloc_bytes_per_peer={traced / store.peer_count:.1f}" if traced else "")

    # half the peers are stale (seen at 1000), half fresh (1001)
    clock.advance(1001 + 3600)  # peers seen before 1001 are past the default --peer-ttl
    maintenance = w.maintenance
    longest = 0.0
    slices = 0
    t0 = time.perf_counter()
    while True:
        s0 = time.perf_counter()
        done = maintenance.sweep_slice()
        longest = max(longest, time.perf_counter() - s0)
        slices += 1
        if done:
            break
    total = time.perf_counter() - t0
    print(
        f"expiry_pass_s={total:.3f} slices={slices} longest_slice_ms={longest * 1000:.2f} "
        f"peers_left={store.peer_count}"
    )


if __name__ == "__main__":
    main()
