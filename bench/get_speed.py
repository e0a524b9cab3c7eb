#!/usr/bin/env python3
"""`weightless get` of one large file from one seeder on loopback, beside `curl` of the same
file from a local HTTP server, in the same run; then a `get` of data already complete in the
cache beside a bare `python -c pass`.

A real `twistd weightless` (SQLite, HTTP only) tracks a hybrid torrent of the file, which
`weightless publish` registers and `weightless seed` serves; `weightless get` then fetches it
into an empty cache directory, the whole command timed (start-up, registry look-up, announce,
download, verification of every piece). `curl` fetches the same file from `python3 -m
http.server`. Each runs --reps times, alternating, into fresh folders; medians are reported,
with the CPU time of the getter (user + system) and of the seeder during each run, and the
machine's load average (1 min) before each run: on a shared machine the figure means little
without it.

    .venv/bin/python bench/get_speed.py [--size-gib 1] [--reps 3] [--cached-reps 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
KEY = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds of the command
    seeder_cpu: float  # user + system seconds the seeder used meanwhile
    load: float  # the 1-minute load average before the run


def cpu_of(pid: int | None) -> float:
    """User + system seconds of a running process, from /proc (0 without one)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(command: list[str], env: dict[str, str], seeder: int | None) -> Run:
    load = os.getloadavg()[0]
    seeded = cpu_of(seeder)
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{command[0]} exited {proc.returncode}")
    return Run(wall, usage.ru_utime + usage.ru_stime, cpu_of(seeder) - seeded, load)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cached-reps", type=int, default=7)
    parser.add_argument(
        "--perf",
        metavar="FILE",
        help="run each get under `perf record -g -o FILE.N` (where its CPU time goes)",
    )
    args = parser.parse_args()
    size = int(args.size_gib * 1024**3)
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="wl-get-") as tmp:
        root = Path(tmp)
        data = root / "data"
        data.mkdir()
        with open(data / "model.bin", "wb") as f:
            left = size
            while left:
                chunk = min(left, 64 * 1024 * 1024)
                f.write(os.urandom(chunk))
                left -= chunk
        port, web = free_port(), free_port()
        env = {**os.environ, "REGISTRY_KEY": KEY, "WL_TRACKER": f"http://127.0.0.1:{port}"}
        env.update(WL_LISTEN="127.0.0.1:0", WL_UDP_PORT="off")
        env.pop("TRACKER_SECRET", None)
        log = open(root / "logs", "wb")  # noqa: SIM115
        try:
            procs.append(
                subprocess.Popen(
                    [str(BIN / "twistd"), "-n", "--pidfile=", "weightless", "--http",
                     f"tcp:{port}:interface=127.0.0.1", "--udp", "off", "--rate-limit", "0",
                     "--database", f"sqlite:///{root}/t.db"],
                    cwd=root, env=env, stdout=log, stderr=log,
                )
            )  # fmt: skip
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "http.server", str(web), "--bind", "127.0.0.1",
                     "--directory", str(data)],
                    cwd=root, stdout=log, stderr=log,
                )
            )  # fmt: skip
            wait_until(lambda: answers(f"http://127.0.0.1:{port}/health"), "the tracker")
            wait_until(lambda: answers(f"http://127.0.0.1:{web}/model.bin"), "the HTTP server")
            published = json.loads(
                subprocess.run(
                    [str(BIN / "weightless"), "publish", str(data / "model.bin"), "-o",
                     str(root / "m.torrent"), "--api-key", KEY, "--json"],
                    env=env, check=True, capture_output=True,
                ).stdout
            )  # fmt: skip
            v2 = published["info_hash"]
            procs.append(
                subprocess.Popen(
                    [str(BIN / "weightless"), "seed", str(root / "m.torrent"), "--data", str(data)],
                    env=env, stdout=log, stderr=log,
                )
            )  # fmt: skip

            def seeding() -> bool:
                url = f"http://127.0.0.1:{port}/api/registry?info_hash={v2}"
                with urllib.request.urlopen(url, timeout=2) as r:
                    return bool(json.load(r)["seeders"] == 1)

            wait_until(seeding, "the seeder")
            times: dict[str, list[Run]] = {"weightless get": [], "curl": []}
            seeder = procs[-1].pid
            cache = root / "cache"
            for rep in range(args.reps):
                shutil.rmtree(cache, ignore_errors=True)
                perf = ["perf", "record", "-q", "-g", "-o", f"{args.perf}.{rep}"]
                times["weightless get"].append(
                    timed([*(perf if args.perf else []), str(BIN / "weightless"), "get", v2],
                          {**env, "WL_CACHE": str(cache)}, seeder)
                )  # fmt: skip
                times["curl"].append(
                    timed(["curl", "-sf", "-o", str(root / "curl.bin"),
                           f"http://127.0.0.1:{web}/model.bin"], env, None)
                )  # fmt: skip
                (root / "curl.bin").unlink()
            # the cache of the last run holds the data: a get of it is a look-up
            cached: dict[str, list[Run]] = {"weightless get (cached)": [], "python -c pass": []}
            for _ in range(args.cached_reps):
                cached["weightless get (cached)"].append(
                    timed([str(BIN / "weightless"), "get", v2], {**env, "WL_CACHE": str(cache)},
                          None)
                )  # fmt: skip
                cached["python -c pass"].append(timed([sys.executable, "-c", "pass"], env, None))
        finally:
            for proc in reversed(procs):
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    mib = size / 1024**2
    print(
        f"{args.size_gib:g} GiB over loopback, {args.reps} runs each, medians; "
        f"{os.cpu_count()} cores"
    )
    print(
        f"{'tool':<24} {'wall s':>7} {'MiB/s':>7} {'CPU s':>6} {'seeder CPU s':>12}"
        "   runs (wall s @ load average)"
    )  # fmt: skip
    med = {name: statistics.median(r.wall for r in runs) for name, runs in times.items()}
    for name, runs in {**times, **cached}.items():
        wall = statistics.median(r.wall for r in runs)
        cpu = statistics.median(r.cpu for r in runs)
        seed_cpu = statistics.median(r.seeder_cpu for r in runs)
        rate = f"{mib / wall:>7.0f}" if name in times else f"{'':>7}"
        listed = ", ".join(f"{r.wall:.2f} @ {r.load:.1f}" for r in runs)
        print(f"{name:<24} {wall:>7.2f} {rate} {cpu:>6.2f} {seed_cpu:>12.2f}   {listed}")
    print(f"weightless get / curl (rate) = {med['curl'] / med['weightless get']:.2f}")


if __name__ == "__main__":
    main()
