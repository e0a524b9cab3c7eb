#!/usr/bin/env python3
"""soak.py - hostile traffic of every kind at once against a real tracker, while a
well-behaved client measures what it still gets.

Starts `twistd -n weightless` on loopback (SQLite in a fresh directory under bench/results/,
or a fresh schema of the PostgreSQL server given with --database), with TRACKER_SECRET and
REGISTRY_KEY set and the default rate limit, registers a few small hybrid torrents and one of
100,000 files (its .torrent bencoded directly), then for --duration seconds runs all of this:

  pipelines    connections sending pipelined `GET /announce/...` and never reading an answer
  trickle      connections sending a request head one byte every few seconds
  one-address  hundreds of connections from one address, held open, never a full request
  addresses    the same from many 127.x.y.z addresses
  udp-sources  up to a million distinct source addresses from 127.16.0.0-127.31.255.255, each
               doing a BEP 15 connect and announce (one socket bound to 0.0.0.0 sends each
               datagram with an IP_PKTINFO source address; the replies come back to it); one
               source in eight also sends an announce with a made-up connection id
  meta         GET /api/registry/meta of the 100,000-file torrent in a loop
  counters     passkey announces with oversized or negative counters (HTTP: 20 digits, 2^64,
               5,000 digits, -1; UDP: 2^63-1 then a smaller total, 2^64-1), each variant's
               answers tallied against the contract
  smuggling    malformed heads (space before the colon, bare CR, obs-fold, two
               Content-Lengths, Content-Length with Transfer-Encoding, no Host, a made-up
               version, bare LF, absolute form, 17,000-byte request line, 20 KiB head),
               each answer tallied against the contract

Meanwhile a well-behaved client (its own process, its own addresses, well within the rate
limit) announces over HTTP and UDP, scrapes, and reads the registry (search, one entry,
/meta of a small torrent) at a steady rate, and records each request's latency and any
failure (error, timeout of 10 s for HTTP and 5 s for UDP, wrong answer). At the end: the
tracker's peak RSS (VmHWM, and RSS sampled every second), the client's p50/p99/max per kind,
how each abuse went, GET /health, and, after a clean stop, whether the client's per-user
traffic reached the database. Exits 1 when a target is missed: every well-behaved request
answered correctly, p99 < 100 ms for every kind, tracker RSS < 400 MB, healthy at the end,
the well-behaved traffic written. A summary goes to bench/results/soak-*.json.

  bench/soak.py                            # 180 s, SQLite, one process
  bench/soak.py --duration 30              # a quick look
  bench/soak.py --workers 3 --database postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import multiprocessing as mp
import os
import queue
import random
import re
import resource
import shlex
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple
from urllib.parse import quote_from_bytes

import bencodepy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "bench", "results")
SECRET = "soak-secret"
REGISTRY_KEY = "soak-registry-key"
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux; Python's socket module lacks the name
UDP_MAGIC = 0x41727101980
MIB = 1 << 20

# Loopback address blocks (127.0.0.0 + base + n), one per role, so that the tracker's
# per-address rate limit and connection caps see each role as the clients it stands for.
GOOD_HTTP, GOOD_UDP, GOOD_READ, SETUP = 0x030000, 0x030100, 0x030200, 0x090000
HOLD_ONE, HOLD_MANY, TRICKLE, PIPE = 0x040000, 0x040100, 0x060000, 0x050000
META, COUNT, SMUGGLE, SPOOF = 0x070000, 0x080000, 0x0A0000, 0x100000

# --skip NAME sets this option to 0
ABUSE = {
    "pipelines": "pipelines",
    "trickle": "trickle",
    "one-address": "hold_one",
    "addresses": "hold_many",
    "udp": "udp_sources",
    "meta": "meta_rate",
    "counters": "counters",
    "smuggling": "smuggling",
}
TARGET_P99_MS = 100.0
TARGET_RSS_MB = 400.0


def lo(base: int, n: int) -> str:
    """The n-th address of a block, skipping .0 and .255 in the last octet."""
    n = base + (n // 254) * 256 + 1 + n % 254
    return socket.inet_ntoa(struct.pack(">I", 0x7F000000 | n))


def spoof_ip(i: int) -> bytes:
    """The i-th UDP source (packed): 127.16.0.0 upwards, a million fit below 127.32."""
    return struct.pack(">I", 0x7F000000 | SPOOF + i)


def passkey(user: str) -> str:
    return f"{user}.{hmac.new(SECRET.encode(), user.encode(), hashlib.sha256).hexdigest()}"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if values else 0.0


# -- torrents, bencoded directly (libtorrent would hash real data: far too slow for 100k files)


def hybrid_torrent(name: str, paths: list[tuple[str, ...]], piece_length: int, seed: int) -> bytes:
    """A hybrid v1+v2 .torrent of files of one piece each (so no pad files, no piece layers)."""
    rng = random.Random(seed)
    tree: dict[bytes, Any] = {}
    for path in paths:
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part.encode(), {})
        leaf = {b"length": piece_length, b"pieces root": rng.randbytes(32)}
        node[path[-1].encode()] = {b"": leaf}
    ordered = sorted(paths)  # the v1 list in the tree's (sorted) order, as creators write it
    info = {
        b"file tree": tree,
        b"files": [{b"length": piece_length, b"path": [p.encode() for p in f]} for f in ordered],
        b"meta version": 2,
        b"name": name.encode(),
        b"piece length": piece_length,
        b"pieces": rng.randbytes(20 * len(paths)),
    }
    return bencodepy.encode({b"announce": b"http://127.0.0.1/announce", b"info": info})


def large_paths(n: int) -> list[tuple[str, ...]]:
    return [(f"shard-{i // 1000:03d}", f"tensor-{i:06d}.bin") for i in range(n)]


# -- a minimal blocking HTTP/1.1 client (one request per connection)


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


def http_request(
    port: int,
    target: str,
    src: str,
    method: str = "GET",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Answer:
    """One request on a fresh connection from ``src``; raises OSError/TimeoutError/ValueError."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        for k, v in (headers or {}).items():
            head += f"{k}: {v}\r\n"
        if body or method == "POST":
            head += f"Content-Length: {len(body)}\r\n"
        s.sendall(head.encode() + b"\r\n" + body)
        chunks = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete answer in time")
            s.settimeout(left)
            data = s.recv(1 << 16)
            if not data:
                break
            chunks.append(data)
    return parse_answer(b"".join(chunks))


def parse_answer(raw: bytes) -> Answer:
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError(f"incomplete answer ({len(raw)} bytes)")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"bad status line {lines[0][:60]!r}")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body, pos = b"", 0
        while True:
            end = rest.index(b"\r\n", pos)
            size = int(rest[pos:end].split(b";")[0], 16)
            if size == 0:
                break
            body += rest[end + 2 : end + 2 + size]
            pos = end + 4 + size
    elif "content-length" in headers:
        body = rest[: int(headers["content-length"])]
        if len(body) < int(headers["content-length"]):
            raise ValueError("truncated body")
    else:
        body = rest
    return Answer(int(parts[1]), headers, body)


# -- BEP 15


def udp_connect_packet(txn: int) -> bytes:
    return struct.pack(">QII", UDP_MAGIC, 0, txn)


def udp_announce_packet(
    cid: bytes,
    txn: int,
    info_hash: bytes,
    peer_id: bytes,
    downloaded: int,
    left: int,
    uploaded: int,
    event: int,
    port: int,
    url: str,
    numwant: int = 10,
) -> bytes:
    """BEP 15 announce with BEP 41 URL data; counters are packed unsigned, so 2**64-1 is -1."""
    data = cid + struct.pack(">II", 1, txn) + info_hash + peer_id
    data += struct.pack(">QQQIIIiH", downloaded, left, uploaded, event, 0, txn, numwant, port)
    raw = url.encode()
    for i in range(0, len(raw), 255):
        chunk = raw[i : i + 255]
        data += bytes([2, len(chunk)]) + chunk
    return data


def udp_reply(data: bytes, txn: int, action: int) -> str | None:
    """None when ``data`` is the expected reply, else what is wrong with it."""
    if len(data) < 8:
        return f"short UDP reply ({len(data)} bytes)"
    got, got_txn = struct.unpack_from(">II", data)
    if got_txn != txn:
        return "UDP reply with another transaction id"
    if got == 3:
        return "BEP 15 error: " + data[8:].decode("utf-8", "replace")
    if got != action or len(data) < (16 if action == 0 else 20):
        return f"UDP reply action {got}, {len(data)} bytes"
    return None


# -- the well-behaved client (its own process: the abusers' CPU use must not skew its clock)


def good_client(cfg: dict[str, Any], out: Any, stop: Any) -> None:
    if cfg["nice"]:
        os.nice(cfg["nice"])
    port, t0 = cfg["port"], cfg["t0"]
    small = cfg["small"]  # [{"v2", "v1", "name", "files"}]
    records: list[tuple[str, float, float, str | None]] = []  # kind, t, ms, failure
    lock = threading.Lock()
    http_key, udp_key = passkey("soak-good-http"), passkey("soak-good-udp")
    totals: dict[str, list[int]] = {"http": [0] * 8, "udp": [0] * 8}  # last uploaded sent
    acked: dict[str, list[int]] = {"http": [0] * 8, "udp": [0] * 8}  # ... and answered
    # a peer's `started` announce counts its totals; until one is answered, every announce of
    # the peer is a `started` with zero (a later first announce would only set a baseline)
    started_ok: dict[str, list[bool]] = {"http": [False] * 8, "udp": [False] * 8}

    def record(kind: str, started: float, failure: str | None) -> None:
        ms = (time.monotonic() - started) * 1000
        with lock:
            records.append((kind, time.time() - t0, ms, failure))

    def check_json(answer: Answer, test: Any) -> str | None:
        if answer.status != 200:
            return f"status {answer.status}: {answer.body[:80]!r}"
        try:
            return test(json.loads(answer.body))
        except (ValueError, KeyError, TypeError) as e:
            return f"bad JSON answer: {e}"

    def http_kind(kind: str, make: Any, check: Any) -> Any:
        def step(i: int) -> None:
            target, src, on_ok = make(i)
            started = time.monotonic()
            try:
                failure = check(http_request(port, target, src))
            except (OSError, ValueError) as e:
                failure = f"{type(e).__name__}: {e}"
            record(kind, started, failure)
            if failure is None and on_ok:
                on_ok()

        return step

    def announce_target(i: int) -> tuple[str, str, Any]:
        j = i % 8
        entry = small[j % len(small)]
        started = not started_ok["http"][j]
        uploaded = 0 if started else totals["http"][j] + MIB
        totals["http"][j] = uploaded
        q = (
            f"info_hash={quote_from_bytes(bytes.fromhex(entry['v1']))}"
            f"&peer_id=-SK0001-{j:012d}&port={7001 + j}&uploaded={uploaded}&downloaded=0"
            f"&left=1000&compact=1&numwant=10" + ("&event=started" if started else "")
        )

        def ok() -> None:
            acked["http"][j] = uploaded
            started_ok["http"][j] = True

        return f"/announce/{http_key}?{q}", lo(GOOD_HTTP, j), ok

    def bencoded_ok(answer: Answer, key: bytes) -> str | None:
        if answer.status != 200:
            return f"status {answer.status}"
        if b"failure reason" in answer.body or not answer.body.startswith(b"d"):
            return f"tracker refused: {answer.body[:100]!r}"
        return None if key in answer.body else f"no {key!r} in {answer.body[:80]!r}"

    def scrape_target(i: int) -> tuple[str, str, None]:
        q = "&".join(f"info_hash={quote_from_bytes(bytes.fromhex(e['v1']))}" for e in small[:2])
        return f"/scrape/{http_key}?{q}", lo(GOOD_READ, i % 16), None

    def search_check(v: Any) -> str | None:
        names = sorted(e["name"] for e in v)
        want = sorted(e["name"] for e in small)
        return None if names == want else f"search found {names}, expected {want}"

    def entry_target(i: int) -> tuple[str, str, None]:
        return f"/api/registry?info_hash={small[i % len(small)]['v2']}", lo(GOOD_READ, i % 16), None

    def entry_check(answer: Answer) -> str | None:
        hashes = {e["v2"] for e in small}
        return check_json(
            answer,
            lambda v: (
                None
                if v["info_hash"] in hashes and "seeders" in v
                else f"wrong entry {str(v)[:80]}"
            ),
        )

    def meta_target(i: int) -> tuple[str, str, None]:
        target = f"/api/registry/meta?info_hash={small[i % len(small)]['v2']}"
        return target, lo(GOOD_READ, 100 + i % 16), None

    def meta_check(answer: Answer) -> str | None:
        by_name = {e["name"]: e["files"] for e in small}
        return check_json(
            answer,
            lambda v: (
                None if len(v["files"]) == by_name.get(v["name"]) else f"wrong meta {str(v)[:80]}"
            ),
        )

    waited_before = run_queue_wait([os.getpid()])
    socks = []
    for j in range(8):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((lo(GOOD_UDP, j), 0))
        s.settimeout(5.0)
        socks.append(s)

    def udp_step(i: int) -> None:
        j = i % 8
        s = socks[j]
        txn = random.getrandbits(32)
        started = time.monotonic()
        try:
            s.sendto(udp_connect_packet(txn), ("127.0.0.1", port))
            data = s.recv(2048)
            failure = udp_reply(data, txn, 0)
        except OSError as e:
            failure = f"{type(e).__name__}: {e or 'timeout'}"
        record("udp connect", started, failure)
        if failure is not None:
            return
        cid = data[8:16]
        first = not started_ok["udp"][j]
        uploaded = 0 if first else totals["udp"][j] + MIB
        totals["udp"][j] = uploaded
        entry = small[j % len(small)]
        packet = udp_announce_packet(
            cid,
            txn,
            bytes.fromhex(entry["v2"])[:20],
            b"-SK0001-%012d" % (100 + j),
            0,
            1000,
            uploaded,
            2 if first else 0,
            7101 + j,
            f"/announce/{udp_key}",
        )
        started = time.monotonic()
        try:
            s.sendto(packet, ("127.0.0.1", port))
            failure = udp_reply(s.recv(2048), txn, 1)
        except OSError as e:
            failure = f"{type(e).__name__}: {e or 'timeout'}"
        record("udp announce", started, failure)
        if failure is None:
            acked["udp"][j] = uploaded
            started_ok["udp"][j] = True

    steps: dict[str, Any] = {
        "http announce": http_kind(
            "http announce", announce_target, lambda a: bencoded_ok(a, b"8:interval")
        ),
        "http scrape": http_kind(
            "http scrape", scrape_target, lambda a: bencoded_ok(a, b"5:files")
        ),
        "udp": udp_step,
        "search": http_kind(
            "search",
            lambda i: ("/api/registry/search?q=soak-small", lo(GOOD_READ, 50 + i % 16), None),
            lambda a: check_json(a, search_check),
        ),
        "entry": http_kind("entry", entry_target, entry_check),
        "meta": http_kind("meta", meta_target, meta_check),
    }

    def run(name: str, rate: float) -> None:
        step, i, start = steps[name], 0, time.monotonic()
        while not stop.is_set():
            wait = start + i / rate - time.monotonic()
            if wait > 0 and stop.wait(wait):
                break
            step(i)
            i += 1

    threads = [
        threading.Thread(target=run, args=(name, rate), daemon=True)
        for name, rate in cfg["rates"].items()
    ]
    for t in threads:
        t.start()
    while not stop.wait(1.0):
        with lock:
            batch, records[:] = list(records), []
        out.put(("good", batch))
    for t in threads:
        t.join(15)
    with lock:
        out.put(("good", list(records)))
    out.put(("good-totals", {"sent": totals, "acked": acked}))
    out.put(("cpu-good", round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1)))
    out.put(("wait-good", round(run_queue_wait([os.getpid()]) - waited_before, 1)))


# -- abuse over TCP (one asyncio process)


async def _connect(src: str, port: int, timeout: float = 10.0) -> Any:
    return await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0)), timeout
    )


class Holds:
    """Connections held open: how many at once, how long, and who closed them."""

    def __init__(self) -> None:
        self.open = self.peak = self.opened = self.closed_by_server = self.failed = 0
        self.longest = 0.0
        self.errors: Counter[str] = Counter()
        self.since: dict[int, float] = {}  # open connections: id -> when opened

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        self.longest = max([self.longest] + [now - t for t in self.since.values()])
        # open for over 2 s: a connection the tracker closes at once is not held
        held = sum(1 for t in self.since.values() if now - t > 2.0)
        self.peak_held = max(getattr(self, "peak_held", 0), held)
        return {
            "open": self.open,
            "peak": self.peak,
            "peak_held": self.peak_held,
            "opened": self.opened,
            "closed_by_server": self.closed_by_server,
            "connect_failed": self.failed,
            "longest_s": round(self.longest, 1),
            "errors": dict(self.errors.most_common(4)),
        }


async def hold(
    stats: Holds, src: str, port: int, stop: asyncio.Event, partial: bytes, trickle: float
) -> None:
    """Keep one connection open from ``src`` until stopped: send ``partial`` (at once, or one
    byte every ``trickle`` seconds), never finish the request, reconnect when closed."""
    await _sleep(stop, random.uniform(0, 3))  # a burst of 1,500 SYNs would overflow backlogs
    while not stop.is_set():
        try:
            reader, writer = await _connect(src, port)
        except (OSError, asyncio.TimeoutError) as e:
            stats.failed += 1
            stats.errors[type(e).__name__] += 1
            await _sleep(stop, 5.0)
            continue
        stats.opened += 1
        stats.open += 1
        stats.peak = max(stats.peak, stats.open)
        since = stats.since[id(writer)] = time.monotonic()
        closed = asyncio.ensure_future(reader.read(1 << 16))
        try:
            if not trickle and partial:
                writer.write(partial)
            sent = 0
            while not stop.is_set() and not closed.done():
                step = trickle if trickle else 1.0
                waiter = asyncio.ensure_future(stop.wait())
                await asyncio.wait([closed, waiter], timeout=step, return_when="FIRST_COMPLETED")
                waiter.cancel()
                if trickle and not closed.done() and sent < len(partial):
                    writer.write(partial[sent : sent + 1])
                    sent += 1
        except OSError:
            pass
        del stats.since[id(writer)]
        stats.longest = max(stats.longest, time.monotonic() - since)
        stats.open -= 1
        if closed.done():
            stats.closed_by_server += 1
            closed.exception()  # a reset is a close too; retrieved so asyncio does not log it
        else:
            closed.cancel()
        writer.transport.abort()
        await _sleep(stop, 5.0 if not trickle else 1.0)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def pipeline(st: dict[str, Any], src: str, cfg: dict[str, Any], stop: asyncio.Event) -> None:
    """Pipelined announces on one connection, as fast as it takes them; never read."""
    key, entry = passkey("soak-pipeline"), cfg["small"][0]
    info = quote_from_bytes(bytes.fromhex(entry["v1"]))
    reqs = b"".join(
        f"GET /announce/{key}?info_hash={info}&peer_id=-SK0002-{n:012d}&port={10000 + n}"
        f"&uploaded=0&downloaded=0&left=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        for n in range(200)
    )
    cap = cfg["pipeline_max_mb"] * MIB
    while not stop.is_set() and st["sent"].get(src, 0) < cap:
        try:
            _reader, writer = await _connect(src, cfg["port"])
        except (OSError, asyncio.TimeoutError):
            st["connect_failed"] += 1
            await _sleep(stop, 2.0)
            continue
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # answers back up sooner
        st["connections"] += 1
        this = 0  # bytes this connection took: what backpressure bounds

        def took() -> None:
            nonlocal this
            this += len(reqs)
            st["sent"][src] = st["sent"].get(src, 0) + len(reqs)
            st["last_progress"][src] = time.time() - cfg["t0"]
            st.setdefault("per_connection", {})[src] = max(
                st.get("per_connection", {}).get(src, 0), this
            )

        try:
            while not stop.is_set() and st["sent"].get(src, 0) < cap:
                writer.write(reqs)
                await asyncio.wait_for(writer.drain(), 1.0)
                took()
        except asyncio.TimeoutError:
            # the server takes no more: wait, keeping the connection (and its unread answers)
            while (
                not stop.is_set()
                and not writer.transport.is_closing()
                and st["sent"].get(src, 0) < cap
            ):
                try:
                    await asyncio.wait_for(writer.drain(), 1.0)
                    took()
                    writer.write(reqs)
                except asyncio.TimeoutError:
                    continue
                except OSError:
                    break
        except OSError:
            st["closed_by_server"] += 1
        writer.transport.abort()
        await _sleep(stop, 1.0)


async def meta_loop(st: dict[str, Any], cfg: dict[str, Any], stop: asyncio.Event) -> None:
    """GET /meta of the large torrent, each from a new address (the rate limit is per address),
    paced to --meta-rate in all."""
    target = f"/api/registry/meta?info_hash={cfg['large']['v2']}"
    sem = asyncio.Semaphore(cfg["meta_concurrency"])
    start, i = time.monotonic(), 0

    async def one(n: int) -> None:
        started = time.monotonic()
        try:
            reader, writer = await _connect(lo(META, n % 60000), cfg["port"])
            writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            raw = await asyncio.wait_for(reader.read(-1), 60)
            writer.transport.abort()
            status = parse_answer(raw).status
            st["status"][str(status)] = st["status"].get(str(status), 0) + 1
            st["bytes"] += len(raw)
            if status == 200:
                st["ms"].append(round((time.monotonic() - started) * 1000, 1))
        except (OSError, ValueError, asyncio.TimeoutError) as e:
            st["status"][type(e).__name__] = st["status"].get(type(e).__name__, 0) + 1
        finally:
            sem.release()

    tasks = set()
    while not stop.is_set():
        wait = start + i / cfg["meta_rate"] - time.monotonic()
        if wait > 0:
            await _sleep(stop, wait)
            continue
        await sem.acquire()
        task = asyncio.ensure_future(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
    for task in list(tasks):
        task.cancel()


BIG = "99999999999999999999"  # 20 digits: above 2^64
HTTP_COUNTERS: list[tuple[str, list[str], str]] = [
    # (variant, query fields of successive announces of one peer, what the contract says)
    ("uploaded=20 digits", [f"uploaded={BIG}", "uploaded=5"], "accepted"),
    ("downloaded=2^64", ["downloaded=18446744073709551616"], "accepted"),
    ("left=20 digits", [f"left={BIG}"], "accepted"),
    ("uploaded=2^63-1 then 5", ["uploaded=9223372036854775807", "uploaded=5"], "accepted"),
    ("uploaded=5,000 digits", ["uploaded=" + "9" * 5000], "accepted"),
    ("uploaded=-1", ["uploaded=-1"], "refused"),
    ("downloaded=-5", ["downloaded=-5"], "refused"),
]
UDP_COUNTERS: list[tuple[str, list[tuple[int, int, int]], str]] = [
    # (variant, [(downloaded, left, uploaded)] packed unsigned, contract)
    ("uploaded=2^63-1 then 1000", [(0, 0, 2**63 - 1), (0, 0, 1000)], "accepted"),
    ("downloaded=2^63-1", [(2**63 - 1, 0, 0)], "accepted"),
    ("uploaded=2^64-1 (-1)", [(0, 0, 2**64 - 1)], "refused"),
    ("left=2^64-1 (-1)", [(0, 2**64 - 1, 0)], "refused"),
]


async def counters(st: dict[str, Any], cfg: dict[str, Any], stop: asyncio.Event) -> None:
    """Announces with oversized counters, HTTP and UDP: each variant in a loop of its own,
    every 2 s, from the next of 100 addresses."""
    port, entry = cfg["port"], cfg["small"][1]
    v1 = quote_from_bytes(bytes.fromhex(entry["v1"]))
    sent = [0]

    async def http_variant(which: int, name: str, steps: list[str]) -> None:
        await _sleep(stop, which * 0.15)
        key = passkey(f"soak-big-{which}")
        while not stop.is_set():
            src = lo(COUNT, sent[0] % 100)
            sent[0] += 1
            for k, fields in enumerate(steps):
                values = {"uploaded": "0", "downloaded": "0", "left": "0"}
                field, _, value = fields.partition("=")
                values[field] = value
                q = "&".join(f"{k2}={v}" for k2, v in values.items())
                target = (
                    f"/announce/{key}?info_hash={v1}&peer_id=-SK0003-{which:012d}"
                    f"&port={9000 + which}&{q}" + ("&event=started" if k == 0 else "")
                )
                outcome = await asyncio.to_thread(_http_outcome, port, target, src)
                _tally(st, "http " + name, f"step {k + 1}: {outcome}")
            await _sleep(stop, 2.0)

    async def udp_variant(which: int, name: str, packets: list[tuple[int, int, int]]) -> None:
        await _sleep(stop, 1.0 + which * 0.15)
        while not stop.is_set():
            src = lo(COUNT, sent[0] % 100)
            sent[0] += 1
            outcomes = await asyncio.to_thread(_udp_counters, port, src, entry, which, packets)
            for k, outcome in enumerate(outcomes):
                _tally(st, "udp " + name, f"step {k + 1}: {outcome}")
            await _sleep(stop, 2.0)

    await asyncio.gather(
        *(http_variant(w, name, steps) for w, (name, steps, _) in enumerate(HTTP_COUNTERS)),
        *(udp_variant(w, name, packets) for w, (name, packets, _) in enumerate(UDP_COUNTERS)),
    )


UNANSWERED = ("TimeoutError", "ConnectionRefusedError", "ConnectionResetError", "OSError")


def _tally(st: dict[str, Any], variant: str, outcome: str) -> None:
    by = st.setdefault(variant, {})
    by[outcome] = by.get(outcome, 0) + 1


def _http_outcome(port: int, target: str, src: str) -> str:
    try:
        a = http_request(port, target, src, timeout=10)
    except (OSError, ValueError) as e:
        return type(e).__name__
    if a.status != 200:
        return f"status {a.status}"
    if b"failure reason" in a.body:
        try:
            reason = bencodepy.decode(a.body)[b"failure reason"].decode()
        except Exception:
            reason = "?"
        return "refused" if "rate limit" not in reason.lower() else "rate limited"
    return "accepted" if a.body.startswith(b"d") else "garbled"


def _udp_counters(
    port: int, src: str, entry: dict[str, Any], which: int, packets: list[tuple[int, int, int]]
) -> list[str]:
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((src, 0))
        s.settimeout(5)
        try:
            s.sendto(udp_connect_packet(1), ("127.0.0.1", port))
            data = s.recv(2048)
            if udp_reply(data, 1, 0):
                return [f"connect failed: {udp_reply(data, 1, 0)}"]
            cid = data[8:16]
            key = passkey(f"soak-bigudp-{which}")
            for k, (down, left, up) in enumerate(packets):
                txn = 2 + k
                s.sendto(
                    udp_announce_packet(
                        cid,
                        txn,
                        bytes.fromhex(entry["v2"])[:20],
                        b"-SK0004-%012d" % which,
                        down,
                        left,
                        up,
                        2 if k == 0 else 0,
                        9100 + which,
                        f"/announce/{key}",
                    ),
                    ("127.0.0.1", port),
                )
                problem = udp_reply(s.recv(2048), txn, 1)
                out.append("accepted" if problem is None else "refused")
        except OSError as e:
            out.append(type(e).__name__)
    return out


def smuggling_variants(port: int, small: list[dict[str, Any]]) -> list[tuple[str, bytes, str]]:
    """(variant, bytes sent, what the contract says: '400' = an error status and no request
    served, 'ok' = served with 200, 'long' = 414/431 or a bencoded failure)."""
    key = passkey("soak-smuggle")
    v1 = quote_from_bytes(bytes.fromhex(small[0]["v1"]))
    ann = f"/announce/{key}?info_hash={v1}&peer_id=-SK0005-000000000001&port=443&left=0"
    inner = f"GET {ann} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.66\r\n\r\n".encode()
    line = f"GET {ann} HTTP/1.1\r\n".encode()
    return [
        ("CL with space before colon", line
         + b"Host: x\r\nContent-Length : %d\r\n\r\n" % len(inner) + inner, "400"),
        ("bare CR in a header", line + b"Host: x\r\nX-A: 1\rX-B: 2\r\n\r\n", "400"),
        ("obs-fold", line + b"Host: x\r\nX-A: 1\r\n  folded\r\n\r\n", "400"),
        ("two Content-Lengths", line
         + b"Host: x\r\nContent-Length: 0\r\nContent-Length: %d\r\n\r\n" % len(inner) + inner,
         "400"),
        ("CL with Transfer-Encoding", line + b"Host: x\r\nContent-Length: %d\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % 5 + inner, "400"),
        ("HTTP/1.1 without Host", line + b"X-A: 1\r\n\r\n", "400"),
        ("made-up version", f"GET {ann} HTTP/7.3\r\nHost: x\r\n\r\n".encode(), "400"),
        ("bare LF (/health)", b"GET /health HTTP/1.1\nHost: x\nConnection: close\n\n", "ok"),
        ("bare LF (announce)", f"GET {ann} HTTP/1.1\nHost: x\nConnection: close\n\n".encode(),
         "ok"),
        ("absolute form", f"GET http://127.0.0.1:{port}{ann} HTTP/1.1\r\nHost: x\r\n"
         "Connection: close\r\n\r\n".encode(), "ok"),
        ("17,000-byte request line", f"GET {ann}&x={'a' * 17000} HTTP/1.1\r\nHost: x\r\n"
         "\r\n".encode(), "long"),
        ("20 KiB head", line + b"Host: x\r\n" + b"X-Pad: " + b"b" * 20480 + b"\r\n\r\n",
         "long"),
    ]  # fmt: skip


def _smuggle_outcome(raw: bytes, closed: bool) -> tuple[str, bool]:
    """What came back, and whether the tracker served any request (a 200). Answers follow
    each other directly (a bencoded body has no newline), so every status line counts."""
    statuses = [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", raw)]
    if not statuses:
        return ("closed, no answer" if closed else "no answer in 3 s"), False
    served = [s for s in statuses if s == 200]
    failure = b"failure reason" in raw
    text = "+".join(map(str, statuses)) + (" (bencoded failure)" if failure else "")
    return text + ("" if closed else ", left open"), bool(served) and not failure


async def smuggling(st: dict[str, Any], cfg: dict[str, Any], stop: asyncio.Event) -> None:
    """Every variant in a loop of its own, each from the next of 100 addresses."""
    variants = smuggling_variants(cfg["port"], cfg["small"])
    sent = [0]

    async def one(name: str, data: bytes, contract: str, delay: float) -> None:
        await _sleep(stop, delay)
        while not stop.is_set():
            src = lo(SMUGGLE, sent[0] % 100)
            sent[0] += 1
            outcome, served = await _smuggle_once(cfg["port"], src, data)
            if contract == "400":
                good = not served and outcome.startswith("4")
            elif contract == "ok":
                good = outcome.startswith("200")
            else:
                good = outcome[:3] in ("414", "431") or "bencoded failure" in outcome
            v = st.setdefault(name, {"contract": contract, "sent": 0, "as_contract": 0, "seen": {}})
            v["sent"] += 1
            v["as_contract"] += int(good)
            v["seen"][outcome] = v["seen"].get(outcome, 0) + 1
            await _sleep(stop, 2.0)

    await asyncio.gather(
        *(one(name, data, contract, k * 0.2) for k, (name, data, contract) in enumerate(variants))
    )


async def _smuggle_once(port: int, src: str, data: bytes) -> tuple[str, bool]:
    raw, closed = b"", False
    try:
        reader, writer = await _connect(src, port)
        writer.write(data)
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            try:
                chunk = await asyncio.wait_for(reader.read(1 << 16), end - time.monotonic())
            except asyncio.TimeoutError:
                break
            if not chunk:
                closed = True
                break
            raw += chunk
        writer.transport.abort()
    except (OSError, asyncio.TimeoutError) as e:
        return f"connect failed: {type(e).__name__}", False
    return _smuggle_outcome(raw, closed)


def abuse_tcp(cfg: dict[str, Any], out: Any, stop_flag: Any) -> None:
    asyncio.run(_abuse_tcp(cfg, out, stop_flag))


async def _abuse_tcp(cfg: dict[str, Any], out: Any, stop_flag: Any) -> None:
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(32))
    stop = asyncio.Event()
    port = cfg["port"]
    one, many, trickle = Holds(), Holds(), Holds()
    pipes: dict[str, Any] = {
        "sent": {},
        "last_progress": {},
        "connections": 0,
        "closed_by_server": 0,
        "connect_failed": 0,
    }
    meta: dict[str, Any] = {"status": {}, "ms": [], "bytes": 0}
    counts: dict[str, Any] = {}
    smuggle: dict[str, Any] = {}
    head = (
        f"GET /announce/{passkey('soak-trickle')}?info_hash="
        f"{quote_from_bytes(bytes.fromhex(cfg['small'][0]['v1']))}&peer_id=-SK0006-000000000001"
        "&port=6881&left=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: soak\r\n\r\n"
    ).encode()
    partial = head[:40]
    tasks = []
    for k in range(cfg["hold_one"]):
        p = partial if k % 2 else b""
        tasks.append(hold(one, lo(HOLD_ONE, 0), port, stop, p, 0))
    for k in range(cfg["hold_many"]):
        p = partial if k % 2 else b""
        tasks.append(hold(many, lo(HOLD_MANY, k % cfg["hold_addresses"]), port, stop, p, 0))
    for k in range(cfg["trickle"]):
        tasks.append(hold(trickle, lo(TRICKLE, k % 20), port, stop, head, cfg["trickle_interval"]))
    tasks += [pipeline(pipes, lo(PIPE, k), cfg, stop) for k in range(cfg["pipelines"])]
    if cfg["meta_rate"]:
        tasks.append(meta_loop(meta, cfg, stop))
    if cfg["counters"]:
        tasks.append(counters(counts, cfg, stop))
    if cfg["smuggling"]:
        tasks.append(smuggling(smuggle, cfg, stop))

    def snapshot() -> dict[str, Any]:
        return {
            "one_address": one.snapshot(),
            "many_addresses": many.snapshot(),
            "trickle": trickle.snapshot(),
            "pipelines": pipes,
            "meta": meta,
            "counters": counts,
            "smuggling": smuggle,
        }

    async def report() -> None:
        while not stop.is_set():
            await _sleep(stop, 1.0)
            out.put(("tcp", snapshot()))
            if stop_flag.is_set():
                stop.set()

    running = [asyncio.ensure_future(t) for t in tasks]
    await report()
    for t in running:
        t.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    out.put(("tcp", snapshot()))
    out.put(("cpu-tcp", round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1)))


# -- abuse over UDP: a million source addresses (its own process: a tight loop)


def abuse_udp(cfg: dict[str, Any], out: Any, stop: Any) -> None:
    port, t0 = cfg["port"], cfg["t0"]
    sources, rate = cfg["udp_sources"], cfg["udp_rate"]
    hashes = [bytes.fromhex(e["v2"])[:20] for e in cfg["small"]]
    urls = [f"/announce/{passkey(f'crowd-{n}')}" for n in range(1000)]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for force, plain in ((33, socket.SO_RCVBUF), (32, socket.SO_SNDBUF)):  # *BUFFORCE as root
        try:
            s.setsockopt(socket.SOL_SOCKET, force, 8 * MIB)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, plain, 8 * MIB)
    s.bind(("0.0.0.0", 0))
    s.setblocking(False)
    tracker = ("127.0.0.1", port)
    st: Counter[str] = Counter()
    connecting: dict[int, float] = {}
    announcing: dict[int, float] = {}
    cids: dict[int, bytes] = {}
    keep_every = max(1, round(1 / cfg["udp_keep"])) if cfg["udp_keep"] else 1 << 40
    i, last_report = 0, 0.0

    def send(data: bytes, n: int) -> bool:
        pktinfo = struct.pack("=I4s4s", 0, spoof_ip(n), b"\0\0\0\0")
        try:
            s.sendmsg([data], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0, tracker)
        except (BlockingIOError, ConnectionRefusedError):
            st["send_blocked"] += 1
            return False
        return True

    while not stop.is_set():
        now = time.time()
        due = min(sources, int((now - t0) * rate), i + 64)  # small bursts: a steady flood
        while i < due and len(connecting) + len(announcing) < 60000:
            if not send(udp_connect_packet(i), i):
                break
            connecting[i] = now
            st["sources"] += 1
            if i % 8 == 7:  # a spoofer's announce: a connection id it cannot know
                bogus = udp_announce_packet(
                    os.urandom(8), 0x80000000 | i, hashes[i % len(hashes)],
                    b"-SK0007-%012d" % i, 0, 1000, 0, 2, 6881, urls[i % len(urls)],
                )  # fmt: skip
                if send(bogus, i):
                    st["bogus_sent"] += 1
            i += 1
        got = 0
        while got < 5000:
            try:
                data = s.recv(2048)
            except BlockingIOError:
                break
            got += 1
            if len(data) < 8:
                st["short_reply"] += 1
                continue
            action, txn = struct.unpack_from(">II", data)
            if txn & 0x80000000:
                st["bogus_answered" if action != 3 else "bogus_error"] += 1
                continue
            if action == 0 and txn in connecting:
                del connecting[txn]
                st["connected"] += 1
                packet = udp_announce_packet(
                    data[8:16], txn, hashes[txn % len(hashes)], b"-SK0008-%012d" % txn,
                    0, 0 if txn % 10 == 0 else 1000, 0, 2, 6881 + txn % 1000,
                    urls[txn % len(urls)], numwant=5,
                )  # fmt: skip
                if send(packet, txn):
                    announcing[txn] = now
                    cids[txn] = data[8:16]
            elif action == 1 and txn in announcing:
                del announcing[txn]
                cid = cids.pop(txn)
                st["announced"] += 1
                if txn % keep_every:  # most clients come and go: they stop at once
                    packet = udp_announce_packet(
                        cid, txn | 0x40000000, hashes[txn % len(hashes)], b"-SK0008-%012d" % txn,
                        0, 1000, 0, 3, 6881 + txn % 1000, urls[txn % len(urls)], numwant=0,
                    )  # fmt: skip
                    if send(packet, txn):
                        st["stop_sent"] += 1
            elif action == 1 and txn & 0x40000000:
                st["stopped"] += 1
            elif action == 3:
                cids.pop(txn, None)
                announcing.pop(txn, None)
                connecting.pop(txn, None)
                st["error: " + data[8:60].decode("utf-8", "replace")] += 1
            else:
                st["unexpected_reply"] += 1
        if now - last_report >= 1.0:
            last_report = now
            for pending, what in ((connecting, "connect_lost"), (announcing, "announce_lost")):
                old = [n for n, sent in pending.items() if now - sent > 5.0]
                for n in old:
                    del pending[n]
                    cids.pop(n, None)
                st[what] += len(old)
            out.put(("udp", dict(st)))
        if not got:
            time.sleep(0.001)
    st["connect_unanswered_at_end"] = len(connecting)
    st["cpu_s"] = round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1)
    st["announce_unanswered_at_end"] = len(announcing)
    out.put(("udp", dict(st)))


# -- the tracker process


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1."""
    while True:
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (bytes) and CPU seconds (utime+stime*100) of one process."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line[:5]] = int(line.split()[1]) * 1024
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out["cpu_ticks"] = int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        pass
    return out


def run_queue_wait(pids: list[int]) -> float:
    """Seconds the processes' threads spent runnable but waiting for a CPU (schedstat)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[1])
    return total / 1e9


def udp_rcvbuf_errors() -> int:
    """Datagrams the kernel dropped because a receive buffer was full (all sockets)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux: 5 > clear_refs), so the soak's peak is its own."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def tracker_pids(root: int) -> list[int]:
    """The tracker and its workers (children, for --workers N)."""
    pids = [root]
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{root}/task"):
            with open(f"/proc/{root}/task/{task}/children") as f:
                pids += [int(p) for p in f.read().split()]
    return pids


class Tracker:
    def __init__(self, a: argparse.Namespace, workdir: str, port: int, database: str) -> None:
        self.port = port
        cmd = [
            os.path.join(REPO, ".venv", "bin", "twistd"),
            "-n",
            "--pidfile=",
            "weightless",
            "--http",
            f"tcp:{port}:interface=127.0.0.1",
            "--udp",
            str(port),
            "--udp-interface",
            "127.0.0.1",
            "--database",
            database,
            "--workers",
            str(a.workers),
            *shlex.split(a.tracker_args),
        ]
        env = dict(os.environ, TRACKER_SECRET=SECRET, REGISTRY_KEY=REGISTRY_KEY)
        self.log_path = os.path.join(workdir, "tracker.log")
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - open for the tracker's life
        soft = a.original_nofile

        def child() -> None:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            # the tracker starts from the limit a service manager would give it, not ours
            resource.setrlimit(resource.RLIMIT_NOFILE, soft)
            if a.nice:
                os.nice(a.nice)

        self.cmd = cmd
        self.proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=child
        )

    def wait_healthy(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        n = 0
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise SystemExit(f"tracker exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if http_request(self.port, "/health", lo(SETUP, n % 200), timeout=2).status == 200:
                    return
            except (OSError, ValueError):
                pass
            n += 1
            time.sleep(0.2)
        raise SystemExit(f"tracker not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        with open(self.log_path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")

    def stop(self, timeout: float = 90.0) -> tuple[int | None, float]:
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None, time.monotonic() - started
        self.log.close()
        return self.proc.returncode, time.monotonic() - started


def register(port: int, torrent: bytes, n: int, category: str) -> dict[str, Any]:
    answer = http_request(
        port,
        f"/api/registry/torrent?category={category}&publisher=soak&license=MIT",
        lo(SETUP, 300 + n),
        method="POST",
        body=torrent,
        headers={"Content-Type": "application/x-bittorrent", "X-Weightless-Key": REGISTRY_KEY},
        timeout=120,
    )
    if answer.status not in (200, 201):
        raise SystemExit(f"registering a torrent failed: {answer.status} {answer.body[:200]!r}")
    body = json.loads(answer.body)
    return {"v2": body["info_hash"], "v1": body["v1_info_hash"]}


# -- the database check after the stop


def stored_traffic(database: str, users: list[str]) -> dict[str, tuple[Any, str]]:
    """{user: (uploaded, SQL type of the value)} as stored."""
    out: dict[str, tuple[Any, str]] = {}
    if database.startswith("sqlite:///"):
        conn = sqlite3.connect(f"file:{database[len('sqlite:///') :]}?mode=ro", uri=True)
        for user in users:
            row = conn.execute(
                "SELECT uploaded, typeof(uploaded) FROM users WHERE user_id = ?", (user,)
            ).fetchone()
            out[user] = (row[0], row[1]) if row else (None, "missing")
        conn.close()
    else:
        import psycopg2

        conn = psycopg2.connect(database)
        with conn.cursor() as cur:
            for user in users:
                cur.execute(
                    "SELECT uploaded, pg_typeof(uploaded)::text FROM users WHERE user_id = %s",
                    (user,),
                )
                row = cur.fetchone()
                out[user] = (row[0], row[1]) if row else (None, "missing")
        conn.close()
    return out


# -- main


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=180, help="seconds of abuse (default 180)")
    ap.add_argument("--database", default="sqlite", help="sqlite, or a postgresql:// URL")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--tracker-args", default="", help="extra twistd weightless options")
    ap.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the tracker and the well-behaved client at this nice value (e.g. -5 as root, "
        "to stand out from other work on a shared machine)",
    )
    ap.add_argument("--large-files", type=int, default=100_000, help="files in the large torrent")
    ap.add_argument("--udp-sources", type=int, default=1_000_000, help="most UDP sources")
    ap.add_argument("--udp-rate", type=float, default=5600, help="new UDP sources per second")
    ap.add_argument(
        "--udp-keep",
        type=float,
        default=0.1,
        help="share of UDP sources that stay as peers; the others announce `stopped` at once",
    )
    ap.add_argument("--pipelines", type=int, default=4)
    ap.add_argument("--pipeline-max-mb", type=int, default=256, help="stop a pipeline there")
    ap.add_argument("--trickle", type=int, default=200, help="trickling connections")
    ap.add_argument("--trickle-interval", type=float, default=2.0, help="seconds per byte")
    ap.add_argument("--hold-one", type=int, default=600, help="connections from one address")
    ap.add_argument("--hold-many", type=int, default=600, help="connections from many addresses")
    ap.add_argument("--hold-addresses", type=int, default=20)
    ap.add_argument("--meta-rate", type=float, default=5.0, help="/meta of the large torrent, /s")
    ap.add_argument("--meta-concurrency", type=int, default=4)
    ap.add_argument("--rate", type=float, default=1.0, help="scale the well-behaved rates")
    ap.add_argument("--rss-abort-mb", type=float, default=1500, help="stop early above this")
    ap.add_argument(
        "--skip",
        default="",
        help="abuse to leave out, comma-separated: "
        + ",".join(ABUSE)
        + " (to find which one hurts)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema")
    a = ap.parse_args()
    a.counters = a.smuggling = 1
    a.skip = {k for k in a.skip.split(",") if k}
    if a.skip - set(ABUSE):
        ap.error(f"--skip: unknown {sorted(a.skip - set(ABUSE))}; known: {', '.join(ABUSE)}")
    for name in a.skip:
        setattr(a, ABUSE[name], 0)

    a.original_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft, hard = a.original_nofile
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stamp = time.strftime("%Y%m%dT%H%M%S")
    workdir = os.path.join(RESULTS, f"soak-{stamp}")
    os.makedirs(workdir, exist_ok=True)

    schema = None
    if a.database == "sqlite":
        database = f"sqlite:///{workdir}/soak.db"
        backend = "SQLite"
    elif a.database.startswith(("postgresql://", "postgres://")):
        import psycopg2

        schema = "wl_soak_" + uuid.uuid4().hex[:10]
        admin = psycopg2.connect(a.database)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
            cur.execute(f"CREATE SCHEMA {schema}")
        admin.close()
        sep = "&" if "?" in a.database else "?"
        database = f"{a.database}{sep}options=-csearch_path%3D{schema}%2Cpublic"
        backend = f"PostgreSQL (schema {schema})"
    else:
        raise SystemExit("--database: sqlite or a postgresql:// URL")

    t_build = time.monotonic()
    small_paths = [[(f"part-{k}.safetensors",) for k in range(2 + n)] for n in range(4)]
    smalls = [hybrid_torrent(f"soak-small-{n}", p, 16384, n) for n, p in enumerate(small_paths)]
    large = hybrid_torrent("soak-large", large_paths(a.large_files), 65536, 99)
    build_s = time.monotonic() - t_build

    port = free_port()
    print(
        f"# soak: {a.duration:.0f} s, {backend}, --workers {a.workers}, port {port}, "
        f"RLIMIT_NOFILE bench {hard} / tracker {soft}, nice {a.nice}; work dir {workdir}",
        flush=True,
    )
    print(
        f"# large torrent: {a.large_files:,} files, {len(large) / MIB:.1f} MiB, built in "
        f"{build_s:.1f} s; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    tracker = Tracker(a, workdir, port, database)
    results: dict[str, Any] = {"args": {k: v for k, v in vars(a).items()}, "port": port}
    try:
        tracker.wait_healthy(120)
        small = []
        for n, data in enumerate(smalls):
            entry = register(port, data, n, "models")
            entry.update(name=f"soak-small-{n}", files=len(small_paths[n]))
            small.append(entry)
        t_reg = time.monotonic()
        big = register(port, large, 10, "datasets")
        register_s = time.monotonic() - t_reg
        print(f"# registered 4 small torrents and the large one ({register_s:.1f} s)", flush=True)
        code = soak(a, tracker, small, big, results, database)
    finally:
        if tracker.proc.poll() is None:
            tracker.stop(10)
        if schema and not a.keep:
            import psycopg2

            admin = psycopg2.connect(a.database)
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute(f"DROP SCHEMA {schema} CASCADE")
            admin.close()
    path = os.path.join(RESULTS, f"soak-{stamp}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1, default=str)
    print(f"# summary: {path}; tracker log: {tracker.log_path}")
    return code


def soak(
    a: argparse.Namespace,
    tracker: Tracker,
    small: list[dict[str, Any]],
    big: dict[str, Any],
    results: dict[str, Any],
    database: str,
) -> int:
    port = tracker.port
    setup_hwm = {pid: proc_status(pid).get("VmHWM", 0) for pid in tracker_pids(tracker.proc.pid)}
    results["setup_hwm_mb"] = round(max(setup_hwm.values()) / MIB, 1)
    results["hwm_reset"] = all(reset_peak(pid) for pid in setup_hwm)
    drops_before = udp_rcvbuf_errors()
    load_before = os.getloadavg()[0]
    wait: dict[int, float] = {}  # pid -> run-queue wait at the start (tracker threads)
    for pid in setup_hwm:
        wait[pid] = -run_queue_wait([pid])
    t0 = time.time()
    rates = {"http announce": 5, "http scrape": 1, "udp": 5, "search": 2, "entry": 2, "meta": 2}
    cfg = {
        "port": port,
        "t0": t0,
        "duration": a.duration,
        "small": small,
        "large": big,
        "rates": {k: v * a.rate for k, v in rates.items()},
        "pipelines": a.pipelines,
        "pipeline_max_mb": a.pipeline_max_mb,
        "trickle": a.trickle,
        "trickle_interval": a.trickle_interval,
        "hold_one": a.hold_one,
        "hold_many": a.hold_many,
        "hold_addresses": a.hold_addresses,
        "meta_rate": a.meta_rate,
        "meta_concurrency": a.meta_concurrency,
        "udp_sources": a.udp_sources,
        "udp_rate": a.udp_rate,
        "udp_keep": a.udp_keep,
        "counters": a.counters,
        "nice": a.nice,
        "smuggling": a.smuggling,
    }
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    stop = ctx.Event()
    procs = {
        "good": ctx.Process(target=good_client, args=(cfg, out, stop), daemon=True),
        "tcp": ctx.Process(target=abuse_tcp, args=(cfg, out, stop), daemon=True),
        "udp": ctx.Process(target=abuse_udp, args=(cfg, out, stop), daemon=True),
    }
    if not a.udp_sources:
        del procs["udp"]
    for p in procs.values():
        p.start()

    good: list[tuple[str, float, float, str | None]] = []
    last: dict[str, Any] = {}
    samples: list[tuple[float, float]] = []  # (t, summed RSS MB)
    waited: dict[int, float] = {}
    hwm: dict[int, int] = {}
    cpu: dict[int, int] = {}
    aborted = None
    next_print = 15.0

    def drain(block: float) -> None:
        end = time.monotonic() + block
        while True:
            try:
                kind, value = out.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                return
            if kind == "good":
                good.extend(value)
            else:
                last[kind] = value

    while time.time() - t0 < a.duration:
        drain(1.0)
        now = time.time() - t0
        if tracker.proc.poll() is not None:
            aborted = f"the tracker exited ({tracker.proc.returncode}) at t={now:.0f} s"
            break
        rss = 0
        for pid in tracker_pids(tracker.proc.pid):
            st = proc_status(pid)
            rss += st.get("VmRSS", 0)
            hwm[pid] = max(hwm.get(pid, 0), st.get("VmHWM", 0))
            cpu[pid] = max(cpu.get(pid, 0), st.get("cpu_ticks", 0))
            if pid not in wait:
                wait[pid] = 0.0
            waited[pid] = run_queue_wait([pid])
        samples.append((round(now, 1), round(rss / MIB, 1)))
        if rss / MIB > a.rss_abort_mb:
            aborted = f"tracker RSS {rss / MIB:.0f} MB above --rss-abort-mb at t={now:.0f} s"
            break
        if now >= next_print:
            next_print += 15.0
            progress(now, rss, good, last)
    stop.set()
    results["aborted"] = aborted
    for p in procs.values():
        p.join(20)
        drain(0.2)
    for name, p in procs.items():
        if p.is_alive():
            print(f"! the {name} process did not stop; killing it", flush=True)
            p.kill()
    drain(0.5)

    results["udp_rcvbuf_drops"] = udp_rcvbuf_errors() - drops_before
    results["tracker_run_queue_wait_s"] = round(sum(wait[p] + waited[p] for p in waited), 1)
    results["load_average"] = [load_before, os.getloadavg()[0]]
    final = {pid: proc_status(pid) for pid in tracker_pids(tracker.proc.pid)}
    for pid, st in final.items():
        hwm[pid] = max(hwm.get(pid, 0), st.get("VmHWM", 0))
        cpu[pid] = max(cpu.get(pid, 0), st.get("cpu_ticks", 0))
    health: dict[str, Any] = {}
    started = time.monotonic()
    try:
        answer = http_request(port, "/health", lo(SETUP, 900), timeout=10)
        health = {"status": answer.status, "body": answer.body[:60].decode("latin-1")}
    except (OSError, ValueError) as e:
        health = {"error": f"{type(e).__name__}: {e}"}
    health["ms"] = round((time.monotonic() - started) * 1000, 1)
    metrics = {}
    with contextlib.suppress(OSError, ValueError):
        text = http_request(port, "/metrics", lo(SETUP, 901), timeout=10).body.decode()
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name.startswith(("tracker_active_peers", "tracker_swarms_total", "tracker_store")):
                metrics[name] = value
    exit_code, stop_s = tracker.stop()
    users = ["soak-good-http", "soak-good-udp"] + [f"soak-big-{n}" for n in range(7)]
    users += [f"soak-bigudp-{n}" for n in range(4)]
    try:
        stored = stored_traffic(database, users)
    except Exception as e:
        stored = {"error": (None, f"{type(e).__name__}: {e}")}
    with open(tracker.log_path, "rb") as f:
        log = f.read().decode("utf-8", "replace").splitlines()
    problems = [
        line for line in log if "Traceback" in line or "Unhandled" in line or "rror" in line
    ]
    results.update(
        samples=samples,
        hwm_mb={pid: round(v / MIB, 1) for pid, v in hwm.items()},
        tracker_cpu_s=round(sum(cpu.values()) / os.sysconf("SC_CLK_TCK"), 1),
        health=health,
        metrics=metrics,
        stop={"exit": exit_code, "seconds": round(stop_s, 1)},
        stored=stored,
        log_problem_lines=len(problems),
        log_examples=problems[:8],
        abuse=last,
    )
    return report(a, results, good, last.get("good-totals"), small)


def progress(now: float, rss: int, good: list[Any], last: dict[str, Any]) -> None:
    failed = sum(1 for r in good if r[3])
    ms = [r[2] for r in good if not r[3]]
    udp = last.get("udp", {})
    tcp = last.get("tcp", {})
    pipes = sum(tcp.get("pipelines", {}).get("sent", {}).values()) / MIB
    print(
        f"t={now:4.0f}s rss={rss / MIB:6.1f} MB  well-behaved: {len(good)} req, {failed} failed, "
        f"p99 {percentile(ms, 99):.0f} ms  | udp sources {udp.get('sources', 0):,} "
        f"announced {udp.get('announced', 0):,} | pipelined {pipes:.0f} MB unread | "
        f"held one-address {tcp.get('one_address', {}).get('open', 0)} "
        f"trickle {tcp.get('trickle', {}).get('open', 0)} | "
        f"meta {sum(tcp.get('meta', {}).get('status', {}).values())}",
        flush=True,
    )


def report(
    a: argparse.Namespace,
    r: dict[str, Any],
    good: list[tuple[str, float, float, str | None]],
    totals: dict[str, Any] | None,
    small: list[dict[str, Any]],
) -> int:
    tcp, udp = r["abuse"].get("tcp", {}), r["abuse"].get("udp", {})
    lines: list[str] = []
    defended: list[str] = []  # abuse the tracker did not hold off, and what shows it

    def flag(ok: bool | None, what: str) -> str:
        """ok, NOT (recorded as a likely cause), or ? (no answer to judge by)."""
        if ok is None:
            return " ? "
        if not ok:
            defended.append(what)
        return "ok " if ok else "NOT"

    lines.append(
        "\n== abuse: what was sent, and what the tracker did (contract: its documented limits;"
        " ? = no answer to judge by)"
    )
    pipes = tcp.get("pipelines", {})
    sent = pipes.get("sent", {})
    per = max(sent.values(), default=0) / MIB
    if a.pipelines:
        # with backpressure a connection stalls once the socket buffers on both sides are full
        # (about 12 MB on loopback, the kernel's autotuned buffers) and takes nothing more
        # until the tracker drops it for not reading (60 s), when the pipeline connects again;
        # without backpressure one connection takes all it is sent (1.6 GB seen)
        last = max(pipes.get("last_progress", {}).values(), default=0.0)
        one = max(pipes.get("per_connection", {}).values(), default=0) / MIB
        judged: bool | None = one < 32
        # a stalled pipeline proves backpressure only while the tracker answers others
        later = sum(1 for k, t, _, f in good if t > last + 5 and not f and not k.startswith("udp"))
        if judged and not later:
            judged = None
        lines.append(
            f"[{flag(judged, 'unread pipelines: no backpressure')}] unread pipelines: "
            f"{len(sent)} connections took {sum(sent.values()) / MIB:.1f} MB of requests (at most "
            f"{per:.1f} MB from one source, {one:.1f} MB on one connection, the last at "
            f"t={last:.0f} s) without their answers being read;"
            " contract: no more reading once 64 KiB of answers wait"
        )
    holds = (
        ("one_address", a.hold_one, f"{a.hold_one} connections from one address", 128),
        ("many_addresses", a.hold_many, f"{a.hold_many} connections from "
         f"{a.hold_addresses} addresses", a.hold_many),
        ("trickle", a.trickle, f"{a.trickle} trickled heads (1 byte / {a.trickle_interval:g} s)"
         f" from 20 addresses", a.trickle),
    )  # fmt: skip
    for key, n, label, cap in holds:
        if not n:
            continue
        h = tcp.get(key, {})
        ok = h.get("peak_held", 0) <= cap and h.get("longest_s", 0) <= 15
        mark = flag(ok, f"idle connections: {label} held too long")
        lines.append(
            f"[{mark}] {label}: up to {h.get('peak_held', 0)} open "
            f"for over 2 s at once, held up to {h.get('longest_s', 0):.0f} s, "
            f"{h.get('closed_by_server', 0)} closed by the tracker, "
            f"{h.get('connect_failed', 0)} connects failed "
            f"{h.get('errors', {}) or ''}; contract: 128 per address, a head within 10 s"
        )
    meta = tcp.get("meta", {})
    mms = meta.get("ms", [])
    if a.meta_rate:
        ok = bool(mms) and percentile(mms, 50) < 50
        lines.append(
            f"[{flag(ok, '/meta of a large torrent: slow')}] /meta of the "
            f"{a.large_files:,}-file torrent: {sum(meta.get('status', {}).values())} requests "
            f"{meta.get('status', {})}, {meta.get('bytes', 0) / MIB:.0f} MB read, p50 "
            f"{percentile(mms, 50):.0f} ms, max {max(mms, default=0):.0f} ms; contract: computed"
            " once at upload, never on the reactor"
        )
    if a.udp_sources:
        conn_rate = udp.get("connected", 0) / max(1, udp.get("sources", 0))
        ann_rate = udp.get("announced", 0) / max(1, udp.get("connected", 0))
        errors = {k[7:]: v for k, v in udp.items() if k.startswith("error: ")}
        lines.append(
            f"[info] UDP: {udp.get('sources', 0):,} distinct source addresses (IP_PKTINFO on one "
            f"socket, 127.16.0.0 up): {conn_rate:.1%} connected, {ann_rate:.1%} of those "
            f"announced ({udp.get('stopped', 0):,} then stopped, as {1 - a.udp_keep:.0%} do), "
            f"connects lost {udp.get('connect_lost', 0):,}, announces lost "
            f"{udp.get('announce_lost', 0):,}, errors {errors or 0}; made-up connection ids: "
            f"{udp.get('bogus_sent', 0):,} sent, {udp.get('bogus_error', 0):,} BEP 15 errors, "
            f"{udp.get('bogus_answered', 0):,} served"
        )
        if udp.get("bogus_answered"):
            defended.append("UDP announces with a made-up connection id were served")
    if a.counters:
        lines.append("oversized and negative counters (answers per step; contract in brackets):")
    contract = {f"http {n}": c for n, _, c in HTTP_COUNTERS}
    contract.update({f"udp {n}": c for n, _, c in UDP_COUNTERS})
    for variant, seen in sorted(tcp.get("counters", {}).items()):
        want = contract.get(variant, "?")
        # no answer in time is the busy reactor, shown elsewhere; only a wrong answer counts
        bad = {k: v for k, v in seen.items() if not k.endswith((want, "rate limited") + UNANSWERED)}
        answered = sum(v for k, v in seen.items() if not k.endswith(UNANSWERED))
        mark = flag(
            None if not answered else not bad, f"oversized counters: {variant} not as the contract"
        )
        lines.append(f"  [{mark}] {variant:34} [{want}] {seen}")
    if a.smuggling:
        lines.append("malformed heads (contract in brackets: 400 = refused, nothing served):")
    silent = ("no answer", "connect failed")  # alone, these may be a busy reactor
    heads = tcp.get("smuggling", {})
    any_answer = any(not k.startswith(silent) for v in heads.values() for k in v["seen"])
    for variant, v in heads.items():
        answered = [k for k in v["seen"] if not k.startswith(silent)]
        judged: bool | None = v["as_contract"] == sum(v["seen"][k] for k in answered)
        if not answered:  # a variant that should be served was not, while others were
            judged = False if v["contract"] == "ok" and any_answer else None
        mark = flag(judged, f"malformed head: {variant} not as the contract")
        lines.append(
            f"  [{mark}] {variant:28} [{v['contract']}] {v['as_contract']}/{v['sent']} as "
            f"contract; seen {v['seen']}"
        )
    if a.skip:
        lines.append(f"skipped: {', '.join(sorted(a.skip))}")

    lines.append(f"\n== well-behaved client ({a.rate:g}x the default rates)")
    lines.append(f"{'kind':15}{'requests':>9}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    kinds: dict[str, list[tuple[float, float, str | None]]] = {}
    for kind, t, ms, failure in good:
        kinds.setdefault(kind, []).append((t, ms, failure))
    worst_p99, failed_total = 0.0, 0
    per_kind = {}
    for kind in sorted(kinds):
        rows = kinds[kind]
        ms = [m for _, m, f in rows]  # failures count too: a timeout is a long wait
        failed = [(t, f) for t, _, f in rows if f]
        failed_total += len(failed)
        p50, p99 = percentile(ms, 50), percentile(ms, 99)
        worst_p99 = max(worst_p99, p99)
        per_kind[kind] = {"n": len(rows), "failed": len(failed), "p50": p50, "p99": p99}
        lines.append(
            f"{kind:15}{len(rows):9}{len(failed):8}{p50:9.1f}{p99:9.1f}{max(ms, default=0):9.1f}"
        )
    r["well_behaved"] = per_kind
    all_failures = sorted((t, k, f) for k, rows in kinds.items() for t, _, f in rows if f)
    if all_failures:
        reasons = Counter(f"{k}: {f[:70]}" for _, k, f in all_failures)
        lines.append(f"failures, first at t={all_failures[0][0]:.0f} s, most common:")
        lines += [f"  {n:5} x {why}" for why, n in reasons.most_common(8)]
        r["failures"] = all_failures[:200]
    # p99 by 10 s window: when it went wrong
    windows: dict[int, list[float]] = {}
    for _, t, ms, _ in good:
        windows.setdefault(int(t // 10) * 10, []).append(ms)
    lines.append(
        "p99 ms by 10 s window: "
        + " ".join(f"{w}s:{percentile(v, 99):.0f}" for w, v in sorted(windows.items()))
    )

    lines.append("\n== tracker")
    hwm = r["hwm_mb"]
    peak_sample = max((mb for _, mb in r["samples"]), default=0.0)
    # the target is per process: with --workers N each worker is a tracker of its own
    peak = max(max(hwm.values(), default=0.0), r["setup_hwm_mb"])
    if len(hwm) == 1:
        peak = max(peak, peak_sample)
    step = max(1, len(r["samples"]) // 12)
    since = "since the setup" if r["hwm_reset"] else "since the start"
    lines.append(
        f"peak RSS: VmHWM {' + '.join(f'{v:.0f}' for v in hwm.values())} MB {since} (per process;"
        f" {r['setup_hwm_mb']:.0f} MB during the setup, which uploads the large torrent), "
        f"sampled peak {peak_sample:.0f} MB (all processes); over time: "
        + " ".join(f"{t:.0f}s:{mb:.0f}" for t, mb in r["samples"][::step])
    )
    cpu = r["abuse"]
    lines.append(
        f"CPU seconds over {a.duration:.0f} s: tracker {r['tracker_cpu_s']}, well-behaved client "
        f"{cpu.get('cpu-good', '?')}, TCP abuse {cpu.get('cpu-tcp', '?')}, UDP abuse "
        f"{cpu.get('udp', {}).get('cpu_s', '-')}; UDP datagrams the kernel dropped (receive "
        f"buffers full): {r['udp_rcvbuf_drops']:,}; {r['metrics']}"
    )
    queue_wait = r["tracker_run_queue_wait_s"]
    load = r["load_average"]
    lines.append(
        f"waiting for a CPU (runnable, not running; schedstat): the tracker {queue_wait} s, the "
        f"well-behaved client {cpu.get('wait-good', '?')} s; load average {load[0]:.1f} before, "
        f"{load[1]:.1f} after, on {os.cpu_count()} CPUs"
    )
    if queue_wait > 0.1 * a.duration:
        lines.append(
            "! the machine was busy: the tracker spent over a tenth of the run waiting for a "
            "CPU, so latencies include that wait; rerun on a quieter machine before judging them"
        )
    h = r["health"]
    healthy = h.get("status") == 200
    lines.append(f"GET /health at the end: {h}")
    code = r["stop"]["exit"]
    # twistd ends itself with the signal it received after a clean shutdown: -15 is normal
    how = "killed after 90 s" if code is None else ("ok" if code in (0, -15) else f"exit {code}")
    lines.append(f"stop (SIGTERM): {how}, {r['stop']['seconds']} s")
    lines.append(
        f"tracker log: {r['log_problem_lines']} lines with errors or tracebacks"
        + "".join(f"\n  {x[:160]}" for x in r["log_examples"][:5])
    )
    udp_failed = sum(1 for kind, _, _, f in good if f and kind.startswith("udp"))
    if udp_failed and r["udp_rcvbuf_drops"]:
        defended.append(
            f"UDP flood: the kernel dropped {r['udp_rcvbuf_drops']:,} datagrams at full receive "
            f"buffers, {udp_failed} well-behaved UDP requests among them (the tracker reads UDP "
            "slower than the flood comes, or has too small an SO_RCVBUF)"
        )
    stored = r["stored"]
    written_ok = True
    if totals:
        for proto, user in (("http", "soak-good-http"), ("udp", "soak-good-udp")):
            acked, sent_total = sum(totals["acked"][proto]), sum(totals["sent"][proto])
            value, kind = stored.get(user, (None, "missing"))
            ok = (value is None and sent_total == 0) or (
                value is not None and acked <= value <= sent_total
            )
            written_ok &= ok
            mark = "n/a" if sent_total == 0 else ("ok " if ok else "NOT")
            lines.append(
                f"[{mark}] {user} uploaded in the database after the stop: "
                f"{value} ({kind}); the client reported {acked:,} (answered) to {sent_total:,}"
            )
    else:
        written_ok = False
        lines.append("[NOT] no totals from the well-behaved client")
    odd = {u: v for u, v in stored.items() if u.startswith("soak-big") and v[1] not in (
        "integer", "bigint", "missing")}  # fmt: skip
    if odd:
        defended.append(f"oversized counters: stored as non-integers {odd}")
        lines.append(f"[NOT] oversized counters stored as non-integers: {odd}")
    if not written_ok:
        defended.append("traffic accounting: well-behaved traffic never reached the database")

    rss_ok = peak < TARGET_RSS_MB
    targets = [
        (failed_total == 0 and not r["aborted"], f"every well-behaved answer ({failed_total} failed"
         f" of {len(good)}{'; ' + r['aborted'] if r['aborted'] else ''})"),
        (worst_p99 < TARGET_P99_MS, f"p99 < {TARGET_P99_MS:.0f} ms for every kind (worst "
         f"{worst_p99:.0f} ms)"),
        (rss_ok, f"tracker RSS < {TARGET_RSS_MB:.0f} MB (peak {peak:.0f} MB"
         + (f" in one process, {peak_sample:.0f} MB in all" if len(hwm) > 1 else "") + ")"),
        (healthy, "healthy at the end (GET /health 200)"),
        (written_ok, "well-behaved traffic written to the database"),
    ]  # fmt: skip
    lines.append("\n== targets")
    lines += [f"[{'PASS' if ok else 'FAIL'}] {what}" for ok, what in targets]
    if defended:
        lines.append("abuse not held off (likely causes of the misses):")
        lines += [f"  - {d}" for d in defended]
    print("\n".join(lines), flush=True)
    r["targets"] = [{"ok": ok, "what": what} for ok, what in targets]
    r["not_held_off"] = defended
    return 0 if all(ok for ok, _ in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
