#!/usr/bin/env python3
"""http_announce.py - announce throughput of Weightless next to opentracker.

Runs the shared load kit (../shared/bench/run_anchor.py) twice in one go: its
`opentracker` preset, then its `custom` mode against Weightless (twistd, one
process, --open, no rate limit, SQLite in the kit's work dir), and prints
announces/s for each and the ratio weightless/opentracker.

  bench/http_announce.py                          # HTTP, 3 reps x 10 s
  bench/http_announce.py --protos http,udp --reps 1 --duration 5
  bench/http_announce.py -- --http-gen httpload-close   # extra args go to the kit

The kit's sources are copied into bench/results/kit/ and run from there, so its
binaries, work dirs and results/*.json stay out of the shared (read-only) kit.
A summary of each invocation is written to bench/results/http_announce-*.json.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "bench", "results")
KIT_SOURCES = (".py", ".lua", ".c", ".md")  # what is copied of the kit (not node/, not builds)
# {http_port} {udp_port} {workdir} are the kit's placeholders; UDP_OPTS is ours
WEIGHTLESS = (
    REPO + "/.venv/bin/twistd -n --pidfile= weightless"
    " --http tcp:{http_port}:interface=127.0.0.1 UDP_OPTS"
    " --open --rate-limit 0 --swarm-file off --database sqlite:///{workdir}/bench.db"
)
UDP_ON, UDP_OFF = "--udp {udp_port} --udp-interface 127.0.0.1", "--udp off"
# a median line of run_anchor.py: "<name> <proto>_announce_rps=<n> key=value ..."
MEDIAN = re.compile(r"^(\S+) (udp|http)_announce_rps=(\d+)\b(.*)$")


def copy_kit(src, dst):
    """Copy the kit's sources, keeping their mtimes so that the kit rebuilds its
    binaries only when a source really changed."""
    os.makedirs(dst, exist_ok=True)
    for name in [f for f in os.listdir(src) if f.endswith(KIT_SOURCES)]:
        s, d = os.path.join(src, name), os.path.join(dst, name)
        st = os.stat(s)
        old = os.stat(d) if os.path.exists(d) else None
        if not old or (old.st_mtime, old.st_size) != (st.st_mtime, st.st_size):
            shutil.copyfile(s, d)
            os.utime(d, (st.st_atime, st.st_mtime))


def run_kit(kit, args, label):
    """Run run_anchor.py (its stderr streams through); return {proto: fields} of its
    median lines, and all its stdout lines."""
    cmd = [sys.executable, os.path.join(kit, "run_anchor.py"), *args]
    print(f"\n== {label}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    # SIGINT back to its default: the kit stops servers with it, and a script started in the
    # background (nohup, &) would otherwise hand its servers an ignored SIGINT
    p = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        text=True,
        cwd=kit,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    medians, lines = {}, []
    for line in p.stdout:
        print(line, end="", flush=True)
        lines.append(line.strip())
        m = MEDIAN.match(line.strip())
        if m:
            fields = dict(re.findall(r"(\w+)=(\S+)", m.group(4)))
            medians[m.group(2)] = dict(fields, rps=int(m.group(3)), line=line.strip())
    if p.wait() != 0:
        logs = os.path.join(kit, "run", label, "server-*.log")
        print(f"!! {label}: run_anchor.py exited {p.returncode}; see {logs}", file=sys.stderr)
    return medians, lines


def table(res, protos):
    head = f"{'proto':<6}{'server':<15}{'announces/s':>12}{'/opentracker':>13}"
    rows = [head + "   cpu% server/generator"]
    for proto in protos:
        ot = res.get("opentracker", {}).get(proto)
        for name, by_proto in res.items():
            r = by_proto.get(proto)
            if r is None:
                continue
            ratio = f"{r['rps'] / ot['rps']:.3f}" if ot and ot["rps"] else "-"
            # with workers, the kit sees only the supervisor's CPU, not the workers'
            server_cpu = "-" if "-w" in name else r["server_cpu_pct"]
            cpu = f"{server_cpu}/{r.get('gen_cpu_pct')}"
            rows.append(f"{proto:<6}{name:<15}{r['rps']:>12}{ratio:>13}   {cpu}")
    # CPU time that neither the server nor the generator used: a noisy neighbour
    for name, by_proto in res.items():
        if "-w" in name:
            continue  # the workers' CPU is not counted: the gap says nothing
        for proto, r in by_proto.items():
            n = {k: int(v) for k, v in r.items() if k.endswith("_pct") and v.isdigit()}
            gap = max(
                n.get("cpu0_busy_pct", 0) - n.get("server_cpu_pct", 0),
                n.get("cpu1_busy_pct", 0) - n.get("gen_cpu_pct", 0),
            )
            if gap > 20:
                rows.append(
                    f"! {name} {proto}: CPUs {gap} points busier than server+generator;"
                    " another process was probably running, rerun"
                )
    return rows


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--kit", default=os.path.join(REPO, "..", "shared", "bench"))
    ap.add_argument("--protos", default="http", help="http, udp or http,udp")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--targets", default="opentracker,weightless", help="servers to run")
    ap.add_argument("--http-port", type=int, default=17070, help="Weightless HTTP port")
    ap.add_argument("--udp-port", type=int, default=17071, help="Weightless UDP port")
    ap.add_argument("--weightless-args", default="", help="extra options for every Weightless run")
    ap.add_argument(
        "--workers",
        default="1",
        help="Weightless worker counts to run, e.g. 1,2 (above 1 the server gets every CPU)",
    )
    ap.add_argument("kit_args", nargs="*", help="after --: extra run_anchor.py options")
    a = ap.parse_args()

    protos = [p for p in a.protos.split(",") if p]
    targets = [t for t in a.targets.split(",") if t]
    kit = os.path.join(RESULTS, "kit")
    copy_kit(os.path.abspath(a.kit), kit)
    common = ["--protos", ",".join(protos), "--reps", str(a.reps)]
    common += ["--duration", str(a.duration), "--warmup", str(a.warmup), *a.kit_args]

    res, out = {}, []
    if "opentracker" in targets:
        res["opentracker"], lines = run_kit(kit, ["opentracker", *common], "opentracker")
        out += lines
    for workers in [int(w) for w in a.workers.split(",")] if "weightless" in targets else []:
        name = "weightless" if workers == 1 else f"weightless-w{workers}"
        server = WEIGHTLESS.replace("UDP_OPTS", UDP_ON if "udp" in protos else UDP_OFF)
        server = f"{server} --workers {workers} {a.weightless_args}".strip()
        wd = os.path.join(kit, "run", name)
        for f in os.listdir(wd) if os.path.isdir(wd) else []:
            if f.startswith("bench.db"):  # a fresh registry on every invocation
                os.remove(os.path.join(wd, f))
        ports = ["--http-port", str(a.http_port), "--udp-port", str(a.udp_port)]
        pin = ["--server-cpu", f"0-{(os.cpu_count() or 2) - 1}"] if workers > 1 else []
        args = ["custom", "--name", name, "--server-cmd", server, *ports, *pin, *common]
        res[name], lines = run_kit(kit, args, name)
        out += lines

    rows = table(res, protos)
    print("\n" + "\n".join(rows))
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"http_announce-{time.strftime('%Y%m%dT%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump({"args": vars(a), "medians": res, "table": rows, "kit_stdout": out}, f, indent=1)
    print(f"# summary: {path}")
    return 0 if all(proto in r for r in res.values() for proto in protos) else 1


if __name__ == "__main__":
    sys.exit(main())
