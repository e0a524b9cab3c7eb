#!/usr/bin/env python3
"""`weightless create` of one large file beside `sha1sum` and `sha256sum` of the same file, in
the same run.

A hybrid torrent needs both digests of every byte (SHA-1 pieces for v1, SHA-256 merkle leaves
for v2), so the yardstick is the two coreutils digests run one after the other, and, stricter,
the slower of the two alone (what two cores could reach by running both at once). The file is
random bytes in a temporary folder, read once before timing so every tool reads it from the
page cache. Each tool runs --reps times, alternating; medians are reported.

    .venv/bin/python bench/create_speed.py [--size-gib 2] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WEIGHTLESS = Path(sys.executable).with_name("weightless")


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    size = int(args.size_gib * 1024**3)
    with tempfile.TemporaryDirectory(prefix="wl-create-") as tmp:
        data = Path(tmp) / "model.bin"
        with open(data, "wb") as f:
            left = size
            while left:
                chunk = min(left, 64 * 1024 * 1024)
                f.write(os.urandom(chunk))
                left -= chunk
        subprocess.run(["cat", str(data)], check=True, stdout=subprocess.DEVNULL)  # warm cache
        commands = {
            "weightless create": [
                str(WEIGHTLESS), "create", str(data), "-o", f"{tmp}/m.torrent", "--json"
            ],
            "sha1sum": ["sha1sum", str(data)],
            "sha256sum": ["sha256sum", str(data)],
        }  # fmt: skip
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.reps):
            for name, cmd in commands.items():
                wall, cpu = timed(cmd)
                walls[name].append(wall)
                cpus[name].append(cpu)
    med = {name: statistics.median(w) for name, w in walls.items()}
    cpu = {name: statistics.median(c) for name, c in cpus.items()}
    mib = size / 1024**2
    print(f"{args.size_gib:g} GiB of random bytes (page cache), {args.reps} runs each, medians:")
    print(f"{'tool':<20} {'wall s':>8} {'MiB/s':>8} {'CPU s':>8}   runs (wall s)")
    for name in commands:
        runs = ", ".join(f"{w:.2f}" for w in walls[name])
        print(f"{name:<20} {med[name]:>8.2f} {mib / med[name]:>8.0f} {cpu[name]:>8.2f}   {runs}")
    both = med["sha1sum"] + med["sha256sum"]
    slower = max(med["sha1sum"], med["sha256sum"])
    ratio = med["weightless create"] / both
    print(f"create / (sha1sum + sha256sum, one after the other) = {ratio:.2f}")
    print(f"create / slower digest alone = {med['weightless create'] / slower:.2f}")


if __name__ == "__main__":
    main()
