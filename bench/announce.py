#!/usr/bin/env python3
"""announce.py - announces per second of Weightless next to opentracker, HTTP and UDP.

One invocation measures both trackers with the same workload, one after the other: 10,000
info hashes with Zipf(1.0) popularity, 100,000 peers (10% seeders), numwant 50, events 85%
none / 8% started / 2% completed / 5% stopped. Each repetition starts a fresh server pinned
to CPU 0, waits until it answers, warms it up, then measures it with a load generator pinned
to CPU 1: wrk with bench/kit/announce.lua for HTTP (64 keep-alive connections), and
bench/kit/udpload.c for UDP (256 announces in flight, from 127.0.0.1 and 127.0.0.2). It
prints the median of the repetitions, the ratio weightless/opentracker and the CPU use of
server and generator, and writes everything to bench/results/announce-<time>.json.

  bench/announce.py                                 # HTTP and UDP, 3 reps x 10 s (~3 min)
  bench/announce.py --reps 1 --duration 5           # a quick look
  bench/announce.py --protos udp --targets weightless
  bench/announce.py --workers 1,2                   # Weightless with --workers 2 as well
  bench/announce.py --weightless-args '--max-peers 30'
  bench/announce.py --stores memory,redis --workers 1,2   # swarms in Redis too (redis-server)

With `--stores redis` (or memory,redis) Weightless also runs with `--swarm-store redis://...` on
a fresh redis-server (no persistence) pinned to --redis-cpu, started and stopped by this script
with each server.

Needs `make install`, gcc, and `apt-get install -y opentracker wrk` (and redis-server). Only
loopback addresses are ever sent to. Debian's opentracker is built with a compulsory
whitelist: the hash pool is its whitelist, so every announce of the workload is allowed there
too.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
import urllib.parse
from typing import Any

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
KIT = os.path.join(BENCH, "kit")
RESULTS = os.path.join(BENCH, "results")
UDPLOAD = os.path.join(RESULTS, "udpload")  # built from bench/kit/udpload.c
TICKS = os.sysconf("SC_CLK_TCK")
HASHES, PEERS, NUMWANT, CONNECTIONS, WINDOW = 10_000, 100_000, 50, 64, 256


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- tools and workload ----------------------------------------------------------------------


def check_tools(targets: list[str], protos: list[str], stores: list[str]) -> None:
    missing = [tool for tool in ("gcc", "taskset") if not shutil.which(tool)]
    if "http" in protos and not shutil.which("wrk"):
        missing.append("wrk")
    if "opentracker" in targets and not os.path.exists("/usr/bin/opentracker"):
        missing.append("opentracker")
    if "redis" in stores and not shutil.which("redis-server"):
        missing.append("redis-server")
    if "weightless" in targets and not os.path.exists(os.path.join(REPO, ".venv/bin/twistd")):
        sys.exit("bench/announce.py: run `make install` first (no .venv/bin/twistd)")
    if missing:
        names = " ".join(missing)
        sys.exit(f"bench/announce.py: missing {names}: apt-get install -y {names}")


def build_udpload() -> None:
    source = os.path.join(KIT, "udpload.c")
    if os.path.exists(UDPLOAD) and os.path.getmtime(UDPLOAD) >= os.path.getmtime(source):
        return
    os.makedirs(RESULTS, exist_ok=True)
    log(f"+ gcc -O2 -Wall -o {UDPLOAD} {source} -lm")
    subprocess.run(["gcc", "-O2", "-Wall", "-o", UDPLOAD, source, "-lm"], check=True)


def hash_pool(path: str) -> str:
    """The info hashes of the workload, most popular first; the first one, in hex."""
    with open(path, "w") as f:
        subprocess.run([UDPLOAD, "-D", "-t", str(HASHES)], stdout=f, check=True)
    os.chmod(path, 0o644)
    with open(path) as f:
        return f.readline().strip()


# -- servers ---------------------------------------------------------------------------------


def opentracker_cmd(workdir: str, pool: str, http_port: int, udp_port: int) -> str:
    os.makedirs(workdir, exist_ok=True)
    os.chmod(workdir, 0o755)
    shutil.copy(pool, os.path.join(workdir, "whitelist.txt"))
    try:
        user = pwd.getpwnam("_opentracker").pw_name
    except KeyError:
        user = "nobody"
    with open(os.path.join(workdir, "opentracker.conf"), "w") as f:
        f.write(
            f"listen.tcp 127.0.0.1:{http_port}\nlisten.udp 127.0.0.1:{udp_port}\n"
            f"tracker.rootdir {workdir}\ntracker.user {user}\n"
            "access.whitelist /whitelist.txt\n"  # a path inside the chroot (the rootdir)
        )
    return f"/usr/bin/opentracker -f {workdir}/opentracker.conf"


def weightless_cmd(
    workdir: str, http_port: int, udp_port: int, udp: bool, workers: int, extra: str
) -> str:
    os.makedirs(workdir, exist_ok=True)
    for name in os.listdir(workdir):
        if name.startswith("bench.db"):  # a fresh registry every time
            os.remove(os.path.join(workdir, name))
    udp_options = f"--udp {udp_port} --udp-interface 127.0.0.1" if udp else "--udp off"
    return (
        f"{REPO}/.venv/bin/twistd -n --pidfile= weightless"
        f" --http tcp:{http_port}:interface=127.0.0.1 {udp_options}"
        f" --open --rate-limit 0 --swarm-file off --database sqlite:///{workdir}/bench.db"
        f" --udp-key-file {workdir}/udp-key --workers {workers} {extra}"
    ).strip()


def start(cmd: str, cpus: str, logfile: Any, cwd: str) -> subprocess.Popen[bytes]:
    # taskset execs the server: the PID is the server's. SIGINT at its default, so that the
    # server stops on it even when this script runs in the background.
    return subprocess.Popen(
        ["taskset", "-c", cpus, *shlex.split(cmd)],
        stdout=logfile,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def start_redis(a: argparse.Namespace, workdir: str) -> subprocess.Popen[bytes]:
    """A fresh redis-server for one Weightless run (no persistence), answering PING."""
    cmd = f"redis-server --port {a.redis_port} --bind 127.0.0.1 --save '' --appendonly no"
    redis = start(cmd, a.redis_cpu, subprocess.DEVNULL, workdir)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", a.redis_port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return redis
        except OSError:
            time.sleep(0.1)
    stop(redis)
    raise RuntimeError("redis-server did not answer within 10 s")


def stop(server: subprocess.Popen[bytes]) -> None:
    """Stop the server this script started, by its PID."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def udp_connects(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        try:
            s.sendto(struct.pack(">QII", 0x41727101980, 0, 0x1234), ("127.0.0.1", port))
            data = s.recv(64)
        except OSError:
            return False
    return len(data) >= 16 and struct.unpack(">II", data[:8]) == (0, 0x1234)


def http_get_announce(port: int, info_hash_hex: str, timeout: float = 2.0) -> tuple[str, bytes]:
    """One HTTP/1.0 announce: (status line, body)."""
    query = urllib.parse.urlencode(
        {
            "info_hash": bytes.fromhex(info_hash_hex),
            "peer_id": "-UL0001-999999999999",
            "port": 6881,
            "uploaded": 0,
            "downloaded": 0,
            "left": 1000,
            "compact": 1,
            "numwant": NUMWANT,
        }
    )
    request = f"GET /announce?{query} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode(errors="replace"), body


def wait_ready(
    server: subprocess.Popen[bytes], a: argparse.Namespace, ports: tuple[int, int], first: str
) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        ready = "udp" not in a.protos or udp_connects(ports[1])
        if ready and "http" in a.protos:
            try:
                status, body = http_get_announce(ports[0], first)
                ready = " 200" in status and b"failure reason" not in body
            except OSError:
                ready = False
        if ready:
            return
        time.sleep(0.2)
    raise RuntimeError("the server did not answer within 30 s")


# -- measuring -------------------------------------------------------------------------------


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime of all its threads


def busy_ticks() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies of each CPU, interrupts included."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                n = [int(v) for v in values[:8]]
                out[name[3:]] = (sum(n) - n[3] - n[4], sum(n))
    return out


def peak_rss_kb(pid: int) -> int | None:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


class Window:
    """The server's CPU, each CPU's business and the wall time over one measurement."""

    def __init__(self, pid: int, redis: int | None = None) -> None:
        self.pid = pid
        self.redis = redis  # the server's redis-server, measured beside it
        self.ticks, self.busy, self.t = cpu_ticks(pid), busy_ticks(), time.time()
        self.redis_ticks = cpu_ticks(redis) if redis is not None else 0

    def end(self) -> dict[str, Any]:
        ticks, busy, t = cpu_ticks(self.pid), busy_ticks(), time.time()
        out: dict[str, Any] = {
            "server_cpu_pct": round(100 * (ticks - self.ticks) / TICKS / (t - self.t))
        }
        if self.redis is not None:
            spent = cpu_ticks(self.redis) - self.redis_ticks
            out["redis_cpu_pct"] = round(100 * spent / TICKS / (t - self.t))
        for cpu, (b, total) in busy.items():
            if cpu in self.busy:
                b0, total0 = self.busy[cpu]
                out[f"cpu{cpu}_busy_pct"] = round(100 * (b - b0) / max(1, total - total0))
        return out


def key_values(line: str) -> dict[str, Any]:
    return {
        k: float(v) if re.fullmatch(r"-?[0-9.]+", v) else v.strip('"')
        for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', line)
    }


def wrk(a: argparse.Namespace, port: int, pool: str, seconds: int, check: bool = False) -> str:
    cmd = ["taskset", "-c", a.gen_cpu, "wrk", "-t", "1", "-c", str(CONNECTIONS)]
    cmd += ["-d", f"{seconds}s", "--timeout", "5s", "-s", os.path.join(KIT, "announce.lua")]
    cmd += [f"http://127.0.0.1:{port}", "--", "/announce", pool]
    env = dict(os.environ, HASHES=str(HASHES), PEERS=str(PEERS), NUMWANT=str(NUMWANT))
    env.update(CHECK="1" if check else "0", CLOSE="1" if a.close else "0")
    return subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True).stdout


def measure_http(
    a: argparse.Namespace, pid: int, port: int, pool: str, redis: int | None
) -> dict[str, Any]:
    wrk(a, port, pool, a.warmup)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    window = Window(pid, redis)
    out = wrk(a, port, pool, a.duration)
    r = window.end()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.time() - window.t
    summary = [line for line in out.splitlines() if line.startswith("summary ")]
    if not summary:
        raise RuntimeError(f"wrk printed no summary: {out}")
    r.update(key_values(summary[0]))
    spent = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    r["gen_cpu_pct"] = round(100 * spent / wall)
    # the answers of the warm server, read (not timed): failures, peers per answer
    check = [
        line for line in wrk(a, port, pool, 2, check=True).splitlines() if line.startswith("check ")
    ]
    if check:
        found = key_values(check[0])
        r.update({k: found.get(k) for k in ("failures", "mean_peers", "zero_peer_pct")})
    return r


def measure_udp(a: argparse.Namespace, pid: int, port: int, redis: int | None) -> dict[str, Any]:
    cmd = ["taskset", "-c", a.gen_cpu, UDPLOAD, "-h", "127.0.0.1", "-p", str(port)]
    cmd += ["-d", str(a.duration), "-W", str(a.warmup), "-t", str(HASHES), "-n", str(PEERS)]
    cmd += ["-w", str(WINDOW), "-m", str(NUMWANT)]
    generator = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    time.sleep(a.warmup)
    window = Window(pid, redis)
    time.sleep(a.duration)
    r = window.end()
    out, _ = generator.communicate(timeout=a.duration + a.warmup + 30)
    found = key_values(out.strip().splitlines()[-1]) if out.strip() else {}
    if generator.returncode != 0 or "rps" not in found:
        raise RuntimeError(f"udpload failed ({generator.returncode}): {out}")
    r.update(found)
    return r


def run_once(
    a: argparse.Namespace, name: str, cmd: str, proto: str, rep: int, env: dict[str, Any]
) -> dict[str, Any]:
    workdir, ports = env["workdir"], env["ports"]
    redis = start_redis(a, workdir) if "-redis" in name else None
    redis_pid = redis.pid if redis is not None else None
    with open(os.path.join(workdir, f"server-{proto}-{rep}.log"), "w") as logfile:
        server = start(cmd, env["server_cpus"], logfile, workdir)
        try:
            wait_ready(server, a, ports, env["first"])
            if proto == "http":
                r = measure_http(a, server.pid, ports[0], env["pool"], redis_pid)
            else:
                r = measure_udp(a, server.pid, ports[1], redis_pid)
            r["vmhwm_kb"] = peak_rss_kb(server.pid)
        finally:
            stop(server)
            if redis is not None:
                stop(redis)
    log(f"  {name} {proto} rep {rep}: {round(r['rps'])} announces/s {line_of(r)}")
    return r


SHOWN = (
    "p50_us", "p99_us", "errors", "timeouts", "failures", "err_connect", "err_read",
    "err_timeout", "mean_peers", "zero_peer_pct", "server_cpu_pct", "gen_cpu_pct",
    "cpu0_busy_pct", "cpu1_busy_pct", "vmhwm_kb", "redis_cpu_pct",
)  # fmt: skip


def line_of(r: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={r[k]:g}" if isinstance(r[k], float) else f"{k}={r[k]}"
        for k in SHOWN
        if r.get(k) is not None
    )


# -- the report ------------------------------------------------------------------------------


def table(medians: dict[str, dict[str, dict[str, Any]]], protos: list[str]) -> list[str]:
    rows = [
        f"{'proto':<6}{'server':<20}{'announces/s':>12}{'/opentracker':>13}"
        "   cpu% server(+redis)/gen"
    ]
    for proto in protos:
        base = medians.get("opentracker", {}).get(proto)
        for name, by_proto in medians.items():
            r = by_proto.get(proto)
            if r is None:
                continue
            ratio = f"{r['rps'] / base['rps']:.3f}" if base and base["rps"] else "-"
            # with workers, only the supervisor's CPU is counted, not the workers'
            server_cpu = "-" if "-w" in name else r.get("server_cpu_pct")
            if r.get("redis_cpu_pct") is not None:
                server_cpu = f"{server_cpu}+{r['redis_cpu_pct']}"  # the server, and its Redis
            cpu = f"{server_cpu}/{round(float(r.get('gen_cpu_pct', 0)))}"
            rows.append(f"{proto:<6}{name:<20}{round(r['rps']):>12}{ratio:>13}   {cpu}")
    for name, by_proto in medians.items():
        if "-w" in name:
            continue
        for proto, r in by_proto.items():
            # CPU time neither the server nor the generator used: something else ran
            idle_gap = max(
                int(r.get("cpu0_busy_pct", 0)) - int(r.get("server_cpu_pct", 0)),
                int(r.get("cpu1_busy_pct", 0)) - int(r.get("gen_cpu_pct", 0)),
            ) - int(r.get("redis_cpu_pct") or 0)
            if idle_gap > 20:
                rows.append(
                    f"! {name} {proto}: the CPUs were {idle_gap} points busier than server and"
                    " generator: another process was running; rerun"
                )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--protos", default="http,udp", help="http, udp or http,udp")
    ap.add_argument("--targets", default="opentracker,weightless", help="servers to run")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="measured seconds (at most 60)")
    ap.add_argument("--warmup", type=int, default=3, help="seconds of load before measuring")
    ap.add_argument("--workers", default="1", help="Weightless --workers values, e.g. 1,2")
    ap.add_argument("--weightless-args", default="", help="more options for every Weightless")
    ap.add_argument("--close", action="store_true", help="HTTP: one connection per announce")
    ap.add_argument("--http-port", type=int, default=17070)
    ap.add_argument("--udp-port", type=int, default=17071)
    ap.add_argument("--stores", default="memory", help="Weightless swarm stores: memory,redis")
    ap.add_argument("--redis-cpu", default="0", help="the CPU redis-server runs on")
    ap.add_argument("--redis-port", type=int, default=17079)
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--gen-cpu", default="1")
    a = ap.parse_args()
    if a.duration > 60 or a.warmup > 30:
        ap.error("keep runs short: --duration at most 60, --warmup at most 30")
    a.protos = [p for p in a.protos.split(",") if p]
    targets = [t for t in a.targets.split(",") if t]
    stores = [s for s in a.stores.split(",") if s]
    check_tools(targets, a.protos, stores)
    build_udpload()
    run = os.path.join(RESULTS, "run")
    os.makedirs(run, exist_ok=True)
    pool = os.path.join(run, f"hashes-{HASHES}.txt")
    first = hash_pool(pool)
    ports = (a.http_port, a.udp_port)
    servers: list[tuple[str, str, str, str]] = []  # name, workdir, command, CPUs
    if "opentracker" in targets:
        wd = os.path.join(run, "opentracker")
        servers.append(("opentracker", wd, opentracker_cmd(wd, pool, *ports), a.server_cpu))
    for store in stores if "weightless" in targets else []:
        for workers in [int(w) for w in a.workers.split(",")]:
            name = "weightless" + ("-redis" if store == "redis" else "")
            name += "" if workers == 1 else f"-w{workers}"
            wd = os.path.join(run, name)
            extra = a.weightless_args
            if store == "redis":
                extra += f" --swarm-store redis://127.0.0.1:{a.redis_port}/0"
            cmd = weightless_cmd(wd, *ports, "udp" in a.protos, workers, extra)
            # several workers get every CPU, as they would in production
            cpus = a.server_cpu if workers == 1 else f"0-{(os.cpu_count() or 2) - 1}"
            servers.append((name, wd, cmd, cpus))

    print(
        f"# {os.cpu_count()} CPUs; {a.reps} reps x {a.duration} s after {a.warmup} s warm-up;"
        f" {HASHES} hashes Zipf(1.0), {PEERS} peers, numwant {NUMWANT}; server on CPU"
        f" {a.server_cpu}, generator on CPU {a.gen_cpu}",
        flush=True,
    )
    medians: dict[str, dict[str, dict[str, Any]]] = {}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    ok = True
    for name, wd, cmd, cpus in servers:
        log(f"== {name}: taskset -c {cpus} {cmd}")
        env = {"workdir": wd, "ports": ports, "server_cpus": cpus, "pool": pool, "first": first}
        for proto in a.protos:
            try:
                done = [run_once(a, name, cmd, proto, rep, env) for rep in range(1, a.reps + 1)]
            except (RuntimeError, subprocess.CalledProcessError) as e:
                log(f"!! {name} {proto}: {e} (server log in {wd})")
                ok = False
                continue
            runs.setdefault(name, {})[proto] = done
            median_rps = statistics.median_low(r["rps"] for r in done)
            medians.setdefault(name, {})[proto] = next(r for r in done if r["rps"] == median_rps)
    rows = table(medians, a.protos)
    print("\n" + "\n".join(rows))
    path = os.path.join(RESULTS, f"announce-{time.strftime('%Y%m%dT%H%M%S')}.json")
    with open(path, "w") as f:
        summary = {"args": vars(a), "servers": servers, "medians": medians, "runs": runs}
        json.dump({**summary, "table": rows}, f, indent=1)
    print(f"# summary: {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
