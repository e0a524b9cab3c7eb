#!/usr/bin/env python3
"""`weightless get` of one large file from one seeder on loopback, beside `curl` of the same
file from a local HTTP server, in the same run.

A real `twistd weightless` (SQLite, HTTP only) tracks a hybrid torrent of the file, which
`weightless publish` registers and `weightless seed` serves; `weightless get` then fetches it
into an empty folder, the whole command timed (start-up, registry look-up, announce, download,
verification of every piece). `curl` fetches the same file from `python3 -m http.server`. Each
runs --reps times, alternating, into fresh folders; medians are reported.

    .venv/bin/python bench/get_speed.py [--size-gib 1] [--reps 3]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--reps", type=int, default=3)
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
            times: dict[str, list[float]] = {"weightless get": [], "curl": []}
            for rep in range(args.reps):
                out = root / f"out-{rep}"
                start = time.perf_counter()
                subprocess.run(
                    [str(BIN / "weightless"), "get", v2, "-o", str(out)],
                    env=env, check=True, stdout=subprocess.DEVNULL,
                )  # fmt: skip
                times["weightless get"].append(time.perf_counter() - start)
                shutil.rmtree(out)
                start = time.perf_counter()
                subprocess.run(
                    ["curl", "-sf", "-o", str(root / "curl.bin"),
                     f"http://127.0.0.1:{web}/model.bin"],
                    check=True,
                )  # fmt: skip
                times["curl"].append(time.perf_counter() - start)
                (root / "curl.bin").unlink()
        finally:
            for proc in reversed(procs):
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    mb = size / 1e6
    print(f"{args.size_gib:g} GiB over loopback, {args.reps} runs each, medians:")
    print(f"{'tool':<16} {'wall s':>8} {'MB/s':>8}   runs (wall s)")
    med = {name: statistics.median(t) for name, t in times.items()}
    for name, runs in times.items():
        listed = ", ".join(f"{t:.2f}" for t in runs)
        print(f"{name:<16} {med[name]:>8.2f} {mb / med[name]:>8.0f}   {listed}")
    print(f"weightless get / curl (MB/s) = {med['curl'] / med['weightless get']:.2f}")


if __name__ == "__main__":
    main()
