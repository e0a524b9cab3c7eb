#!/usr/bin/env python3
"""hostile_upload.py - other clients' announce latency while hostile uploads are parsed.

One invocation starts `twistd -n weightless --open` (SQLite in bench/results/, rate limit on
as shipped: 5/s, burst 10 per address) and a load generator in a process of its own that
announces over keep-alive connections at a steady pace, each announce from its own address
(X-Forwarded-For, the tracker trusting 127.0.0.1), and times every answer. It measures, in the
same run:

  1. without uploads, for --duration seconds;
  2. with --uploads hostile maximum-size uploads in flight from one address (each uploader
     sends again as soon as it has its answer, waiting out a 429 or 503 as told), for
     --duration seconds. The bodies are --size-mib MiB of bencode that is slow to parse:
     small integers (`li1ei1e...`), lists nested a hundred deep, and one-byte strings.

It prints announce p50/p99/max for both phases, what the uploads were answered, the machine's
load average before and after, and the tracker's CPU time; the target is p99 under 50 ms with
the uploads in flight.

  bench/hostile_upload.py                         # 10 uploads of 11 MiB, 2 x 10 s
  bench/hostile_upload.py --workers 2             # the same against --workers 2
  bench/hostile_upload.py --duration 5 --rate 200

Only loopback addresses are ever sent to.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from typing import Any

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
RESULTS = os.path.join(BENCH, "results")
TWISTD = os.path.join(REPO, ".venv", "bin", "twistd")
TARGET_P99_MS = 50.0
CONNECTIONS = 4
HASHES = 1000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def hostile_bodies(size: int) -> list[bytes]:
    """Bodies of ``size`` bytes that are strict bencode up to the end and slow to parse."""
    head, tail = b"d4:infol", b"ee"
    room = size - len(head) - len(tail)
    nested = b"l" * 100 + b"i1e" + b"e" * 100
    kinds = [b"i1e", nested, b"1:a"]
    return [head + unit * (room // len(unit)) + tail for unit in kinds]


# -- the tracker


def start_tracker(workdir: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    args = [
        TWISTD, "-n", "--pidfile=", "weightless", "--open",
        "--http", f"tcp:{port}:interface=127.0.0.1", "--udp", "off",
        "--database", f"sqlite:///{workdir}/tracker.db",
        "--swarm-file", "off", "--trusted-proxy", "127.0.0.1",
        "--workers", str(workers),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIGHTLESS_")}
    out = open(os.path.join(workdir, "twistd.log"), "wb")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(args, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"twistd exited at start; see {workdir}/twistd.log")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("twistd did not answer /health within 60 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants still running."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(entry) == pid or _descends(int(entry), pid):
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _descends(pid: int, ancestor: int) -> bool:
    for _ in range(8):
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rpartition(")")[2].split()[1])
        except OSError:
            return False
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False


# -- the load generator (a process of its own)


def announce_target(rng: random.Random) -> str:
    info_hash = rng.randrange(HASHES).to_bytes(20, "big")
    query = urllib.parse.urlencode(
        {
            "info_hash": info_hash,
            "peer_id": rng.randbytes(20),
            "port": rng.randrange(1024, 65535),
            "uploaded": 0,
            "downloaded": 0,
            "left": rng.choice((0, 1 << 20)),
            "compact": 1,
            "numwant": 20,
        }
    )
    return "/announce?" + query


def load(port: int, rate: float, phases: list[float], out: Any) -> None:
    """Announce at ``rate`` per second over `CONNECTIONS` keep-alive connections; the latency
    in seconds of every answer, one list per phase (each ``phases[i]`` seconds long)."""
    results: list[list[float]] = []
    errors = Counter[str]()
    lock = threading.Lock()

    def worker(n: int, stop_at: float, into: list[float]) -> None:
        rng = random.Random(n * 7919 + len(results))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        every = CONNECTIONS / rate
        due = time.monotonic()
        while due < stop_at:
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
            ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            t0 = time.perf_counter()
            try:
                conn.request("GET", announce_target(rng), headers={"X-Forwarded-For": ip})
                response = conn.getresponse()
                body = response.read()
            except OSError as e:
                with lock:
                    errors[type(e).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                due += every
                continue
            elapsed = time.perf_counter() - t0
            with lock:
                into.append(elapsed)
                if b"failure reason" in body:
                    errors["failure reason"] += 1
            due += every
        conn.close()

    for seconds in phases:
        into: list[float] = []
        stop_at = time.monotonic() + seconds
        threads = [
            threading.Thread(target=worker, args=(n, stop_at, into)) for n in range(CONNECTIONS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results.append(into)
        out.send(("phase", len(results)))
    out.send(("done", results, dict(errors)))


# -- the hostile uploaders


def uploader(port: int, body: bytes, stop: threading.Event, answers: Counter[int]) -> None:
    while not stop.is_set():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request(
                "POST",
                "/api/registry/torrent",
                body,
                {"Content-Type": "application/x-bittorrent"},
            )
            response = conn.getresponse()
            response.read()
            answers[response.status] += 1
            wait = response.getheader("Retry-After")
        except OSError as e:
            answers[type(e).__name__] += 1  # type: ignore[index]
            wait = "1"
        finally:
            conn.close()
        if wait is not None:
            stop.wait(min(float(wait), 5.0))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def summary(name: str, latencies: list[float]) -> str:
    ms = [v * 1000 for v in latencies]
    return (
        f"{name:<26} {len(ms):>7} announces  p50 {percentile(ms, 50):8.2f} ms  "
        f"p99 {percentile(ms, 99):8.2f} ms  max {max(ms, default=float('nan')):8.2f} ms  "
        f"mean {statistics.fmean(ms) if ms else float('nan'):8.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase [10]")
    parser.add_argument("--rate", type=float, default=400.0, help="announces per second [400]")
    parser.add_argument("--uploads", type=int, default=10, help="hostile uploads in flight [10]")
    parser.add_argument("--size-mib", type=float, default=11.0, help="MiB per upload [11]")
    parser.add_argument("--workers", type=int, default=1, help="tracker --workers [1]")
    args = parser.parse_args()

    os.makedirs(RESULTS, exist_ok=True)
    workdir = os.path.join(RESULTS, f"hostile-upload-{int(time.time())}")
    os.makedirs(workdir)
    port = free_port()
    size = int(args.size_mib * (1 << 20))
    bodies = hostile_bodies(size)
    log(f"tracker on 127.0.0.1:{port} (--workers {args.workers}), work directory {workdir}")
    load_before = os.getloadavg()
    tracker = start_tracker(workdir, port, args.workers)
    here, there = multiprocessing.Pipe()
    try:
        warmup = 2.0
        generator = multiprocessing.get_context("spawn").Process(
            target=load, args=(port, args.rate, [warmup, args.duration, args.duration], there)
        )
        generator.start()
        assert here.recv() == ("phase", 1)
        cpu0 = cpu_seconds(tracker.pid)
        log(f"measuring {args.duration:g} s without uploads")
        assert here.recv() == ("phase", 2)
        cpu1 = cpu_seconds(tracker.pid)
        log(f"measuring {args.duration:g} s with {args.uploads} uploads of {args.size_mib:g} MiB")
        stop = threading.Event()
        answers: Counter[int] = Counter()
        uploaders = [
            threading.Thread(
                target=uploader, args=(port, bodies[i % len(bodies)], stop, answers), daemon=True
            )
            for i in range(args.uploads)
        ]
        for t in uploaders:
            t.start()
        assert here.recv() == ("phase", 3)
        cpu2 = cpu_seconds(tracker.pid)
        stop.set()
        _, results, errors = here.recv()
        generator.join()
        # what is still being uploaded or parsed is not waited for: the tracker stops it
        measured = Counter(answers)
    finally:
        tracker.send_signal(signal.SIGTERM)
        try:
            tracker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            tracker.kill()
    load_after = os.getloadavg()
    _, quiet, hostile = results
    print(f"machine: {os.cpu_count()} CPUs; load average (1, 5, 15 min) before "
          f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, after "
          f"{load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")  # fmt: skip
    print(f"tracker --workers {args.workers}, announces at {args.rate:g}/s over "
          f"{CONNECTIONS} connections, {args.duration:g} s per phase")  # fmt: skip
    print(summary("without uploads", quiet) + f"  tracker CPU {cpu1 - cpu0:.1f} s")
    print(
        summary(f"with {args.uploads} uploads in flight", hostile)
        + f"  tracker CPU {cpu2 - cpu1:.1f} s (parse processes included)"
    )
    statuses = ", ".join(f"{n} x {status}" for status, n in sorted(measured.items(), key=str))
    print(f"uploads of {args.size_mib:g} MiB answered while measured: {measured.total()} "
          f"({statuses or 'none'}); the rest were still being parsed or waiting")  # fmt: skip
    if errors:
        print(f"announce errors: {errors}")
    p99 = percentile([v * 1000 for v in hostile], 99)
    verdict = "met" if p99 < TARGET_P99_MS else "NOT met"
    print(f"target: p99 under {TARGET_P99_MS:g} ms with the uploads in flight: {verdict}")


if __name__ == "__main__":
    main()
