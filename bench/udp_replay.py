#!/usr/bin/env python3
"""udp_replay.py - CPU instructions per BEP 15 UDP announce, for a fixed workload.

Wall-clock throughput on a shared machine is noisy; the number of instructions the tracker
executes for a fixed set of datagrams is not. This script replays the workload of
bench/announce.py (as bench/kit/udpload.c makes it: 10,000 Zipf(1.0) info hashes, 100,000
peers from 127.0.0.1 and 127.0.0.2, 10% seeders, events 85% none / 8% started / 2% completed /
5% stopped, numwant 50) through the UDPTracker that weightless.tap wires, on the real reactor
over real loopback sockets, and counts the server process's instructions with valgrind's
callgrind (user space only: a syscall counts as the few instructions that enter it, so fewer
syscalls show as fewer instructions only through the code around them; the count of syscalls
per announce is printed too, from strace).

  bench/udp_replay.py                         # both I/O loops, 20,000 announces each
  bench/udp_replay.py --loops plain --count 5000
  bench/udp_replay.py --direct                # answer() alone, no sockets (the tracker's Python)

The server prefills its swarms with 200,000 announces of the same workload (not counted;
bench/announce.py's 3 s warm-up does the same), then a client process sends the measured
announces in bursts of --burst datagrams, each burst answered before the next one goes out.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

HASHES, PEERS, SOURCES = 10_000, 100_000, ("127.0.0.1", "127.0.0.2")
# the server's address: 127.0.0.1 as in bench/announce.py, or "::" (the tracker's default: a
# dual-stack socket)
INTERFACE = os.environ.get("UDP_REPLAY_INTERFACE", "127.0.0.1")
_ANNOUNCE = struct.Struct(">QII20s20sqqqiIIiH")


class Workload:
    """bench/announce.py's announces, deterministic for a seed (Zipf(1.0) hashes, uniform peers)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        pool = random.Random(7)
        self.hashes = [pool.randbytes(20) for _ in range(HASHES)]
        weights = [1.0 / (rank + 1) for rank in range(HASHES)]
        total = sum(weights)
        acc, self.cdf = 0.0, []
        for w in weights:
            acc += w / total
            self.cdf.append(acc)

    def next(self, connection_ids: dict[int, int]) -> tuple[int, bytes]:
        """(source index, datagram) of one announce."""
        rng = self.rng
        from bisect import bisect_left

        info_hash = self.hashes[min(bisect_left(self.cdf, rng.random()), HASHES - 1)]
        peer = rng.randrange(PEERS)
        src = peer % len(SOURCES)
        r = rng.randrange(100)
        event = 0 if r < 85 else 2 if r < 93 else 1 if r < 95 else 3
        left = 0 if peer % 10 == 0 or event == 1 else 1 + rng.randrange(1 << 30)
        datagram = _ANNOUNCE.pack(
            connection_ids[src],
            1,
            rng.getrandbits(32),
            info_hash,
            b"-UL0001-%012d" % peer,
            rng.randrange(1 << 30),
            left,
            rng.randrange(1 << 28),
            event,
            0,
            peer,
            50,
            1024 + (peer // len(SOURCES)) % 64512,
        )
        return src, datagram


def build(loop: str):
    """The UDP tracker as ``weightless.tap`` wires it for one process (--open, no rate limit),
    and a function that starts its port on the reactor."""
    from twisted.internet import reactor
    from wired import wired

    key_file = os.path.join(tempfile.mkdtemp(prefix="udp_replay-key-"), "udp-key")
    w = wired(reactor, "--udp", "0", "--udp-key-file", key_file, rand=random.Random(1).random)
    proto, stats = w.udp, w.stats
    assert proto is not None

    def listen():
        if loop == "plain":
            from twisted.internet import udp

            port = udp.Port(0, proto, INTERFACE, reactor=reactor)
            port.startListening()
            return port
        from weightless.udp import port as udpport

        return udpport.listen(reactor, 0, proto, INTERFACE, batched=loop == "batched")

    return proto, stats, listen


def serve(loop: str, prefill: int) -> None:
    """The measured process: prefill, print the port, answer until told to stop."""
    from twisted.internet import reactor

    proto, _, listen = build(loop)
    work = Workload(seed=1)
    now = time.time()
    cids = {i: proto.connection_ids.make(socket.inet_aton(h), now) for i, h in enumerate(SOURCES)}
    for _ in range(prefill):
        src, data = work.next(cids)
        proto.answer(data, SOURCES[src], 40000, now)
    port = listen()
    print(port.getHost().port, os.getpid(), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    reactor.run(installSignalHandlers=False)


def connect(sock: socket.socket, dest: tuple[str, int]) -> int:
    sock.sendto(struct.pack(">QII", 0x41727101980, 0, 7), dest)
    sock.settimeout(60)
    data = sock.recv(2048)
    sock.setblocking(False)
    return struct.unpack(">IIQ", data)[2]


def drive(port: int, count: int, burst: int, seed: int) -> tuple[int, int]:
    """Send ``count`` announces in bursts; returns (answered, lost)."""
    socks = []
    for host in SOURCES:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((host, 0))
        socks.append(s)
    dest = ("127.0.0.1", port)
    cids = {i: connect(s, dest) for i, s in enumerate(socks)}
    work = Workload(seed)
    answered = lost = 0
    sent = 0
    while sent < count:
        n = min(burst, count - sent)
        for _ in range(n):
            src, data = work.next(cids)
            socks[src].sendto(data, dest)
        sent += n
        waiting = n
        while waiting:
            ready, _, _ = select.select(socks, [], [], 30)
            if not ready:
                lost += waiting
                break
            for s in ready:
                while waiting:
                    try:
                        reply = s.recv(2048)
                    except BlockingIOError:
                        break
                    if reply[:4] != b"\x00\x00\x00\x01":
                        raise SystemExit(f"not an announce reply: {reply!r}")
                    waiting -= 1
                    answered += 1
    return answered, lost


def measure(loop: str, count: int, burst: int, prefill: int, strace: bool, interface: str) -> dict:
    """Run the server under callgrind (instrumented only while the client drives it)."""
    out = tempfile.mkdtemp(prefix="udp_replay-")
    log = os.path.join(out, "callgrind.out")
    tool = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={log}",
    ]
    if strace:
        tool = ["strace", "-f", "-c", "-o", os.path.join(out, "strace")]
    cmd = [*tool, sys.executable, __file__, "--serve", loop, "--prefill", str(prefill)]
    os.environ["UDP_REPLAY_INTERFACE"] = interface
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port, pid = map(int, server.stdout.readline().split())
        drive(port, 200, burst, seed=99)  # warm the port's code paths, not counted
        if not strace:
            subprocess.run(
                ["callgrind_control", "-i", "on", str(server.pid)], check=True, capture_output=True
            )
        t0 = time.time()
        answered, lost = drive(port, count, burst, seed=2)
        wall = time.time() - t0
        if not strace:
            subprocess.run(
                ["callgrind_control", "-i", "off", str(server.pid)], check=True, capture_output=True
            )
    finally:
        os.kill(pid, signal.SIGTERM)  # the server itself, not strace in front of it
        server.wait(timeout=120)
    result = {"loop": loop, "count": count, "answered": answered, "lost": lost, "wall_s": wall}
    if strace:
        with open(os.path.join(out, "strace")) as f:
            text = f.read()
        calls = {
            m[1]: int(m[0])
            for m in re.findall(
                r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", text, re.M
            )
        }
        result["syscalls"] = calls  # with the 200 warm-up announces and 2+2 connects
        result["syscall_announces"] = count + 204
    else:
        with open(log) as f:
            text = f.read()
        m = re.search(r"^totals: (\d+)", text, re.M)
        result["instructions"] = int(m.group(1)) if m else None
    if os.environ.get("UDP_REPLAY_KEEP"):
        print(f"kept {out}", file=sys.stderr)
    else:
        shutil.rmtree(out, ignore_errors=True)
    return result


def direct(count: int, prefill: int) -> None:
    """answer() alone under callgrind: the tracker's Python without any socket."""
    out = tempfile.mkdtemp(prefix="udp_replay-")
    base = None
    for n in (0, count):
        log = os.path.join(out, f"cg.{n}")
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={log}",
                sys.executable,
                __file__,
                "--direct-child",
                str(n),
                "--prefill",
                str(prefill),
                "--count",
                str(count),
            ],
            check=True,
            capture_output=True,
        )
        with open(log) as f:
            total = int(re.search(r"^totals: (\d+)", f.read(), re.M).group(1))
        if base is None:
            base = total
        else:
            print(
                f"direct answer(): {(total - base) / count:,.0f} instructions per announce "
                f"({count} announces after a {prefill}-announce prefill)"
            )
    shutil.rmtree(out, ignore_errors=True)


def direct_child(answer: int, prefill: int, count: int) -> None:
    """Build the same datagrams whatever ``answer`` is, answer ``prefill + answer`` of them."""
    proto, _, _ = build("plain")
    work = Workload(seed=1)
    now = time.time()
    cids = {i: proto.connection_ids.make(socket.inet_aton(h), now) for i, h in enumerate(SOURCES)}
    packets = [work.next(cids) for _ in range(prefill + count)]
    for src, data in packets[: prefill + answer]:
        proto.answer(data, SOURCES[src], 40000, now)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--loops",
        default="plain,python,batched",
        help="plain (Twisted's udp.Port), "
        "python (weightless.udp.port without the C extension), batched",
    )
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument(
        "--interface", default="127.0.0.1", help='the server binds this; "::" is dual-stack'
    )
    ap.add_argument("--burst", type=int, default=64)
    ap.add_argument("--prefill", type=int, default=200_000)
    ap.add_argument("--direct", action="store_true")
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--direct-child", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        return serve(a.serve, a.prefill)
    if a.direct_child is not None:
        return direct_child(a.direct_child, a.prefill, a.count)
    if a.direct:
        return direct(a.count, a.prefill)
    for loop in a.loops.split(","):
        r = measure(loop, a.count, a.burst, a.prefill, False, a.interface)
        line = (
            f"{loop:8} {r['instructions'] / r['count']:>9,.0f} instructions/announce"
            f"  ({r['answered']} answered, {r['lost']} lost, burst {a.burst})"
        )
        if not a.no_strace and shutil.which("strace"):
            s = measure(loop, a.count, a.burst, a.prefill, True, a.interface)
            calls = s["syscalls"]
            io = {k: v for k, v in calls.items() if re.match(r"(recv|send|epoll)", k)}
            per = sum(io.values()) / s["syscall_announces"]
            line += f"  {per:.2f} I/O syscalls/announce " + " ".join(
                f"{k}={v}" for k, v in sorted(io.items())
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
