#!/usr/bin/env python3
"""Registry search latency at 100,000 entries, on SQLite and on PostgreSQL.

Fills a fresh registry (SQLite: a temporary file; PostgreSQL: a temporary schema, dropped at the
end) with N entries of made-up models and datasets, gives a fifth of them live peers and copies
the counts through the tracker's own path (CountsPublisher -> IStore.save_counts), lets the
database settle (ANALYZE; PostgreSQL: VACUUM ANALYZE, as autovacuum would soon after), then
times searches one at a time:

  store: IStore.search() as the API calls it (page + X-Total-Count), through the reactor
  api:   GET /api/registry/search over loopback against the real Klein app (JSON and live
         counts included), client in the same process

for these queries: ``q`` (name substrings of 3+ characters, from common to absent), ``q`` of 2
characters (no trigram index can serve those: a scan), ``category`` (a third of the registry
matches) and ``sort=seeders`` (the whole registry ordered by live counts).
Prints p50/p99 in milliseconds and, with --json, a machine-readable summary.

    .venv/bin/python bench/registry_search.py                      # both backends, 100k entries
    .venv/bin/python bench/registry_search.py --backends sqlite --entries 20000 --runs 100
    WEIGHTLESS_BENCH_DATABASE_URL=postgresql://me@db/bench .venv/bin/python bench/registry_search.py

PostgreSQL: WEIGHTLESS_BENCH_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg2
import treq
from psycopg2.extensions import make_dsn
from psycopg2.extras import execute_values
from twisted.internet import defer, task
from twisted.web.client import HTTPConnectionPool
from twisted.web.server import Site

from weightless.registry.live import COUNTS_SLICE, CountsPublisher, LiveRegistry
from weightless.registry.postgres import PostgresStore
from weightless.registry.search import Search
from weightless.registry.service import RegistryService, pool_runner
from weightless.registry.sqlite import SQLiteStore
from weightless.registry.store import IStore
from weightless.tracker.accounting import PendingWrites
from weightless.tracker.catalog import Catalog
from weightless.tracker.ratelimit import RateLimiter
from weightless.tracker.swarm import SwarmStore
from weightless.web.clientip import ClientIP
from weightless.web.registry_api import RegistryAPI

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
FAMILIES = [
    "llama", "mistral", "qwen", "gemma", "phi", "falcon", "bert", "roberta", "t5", "whisper",
    "stable-diffusion", "flux", "clip", "vit", "resnet", "yolo", "deepseek", "olmo", "bloom",
    "gpt-neox", "mamba", "rwkv", "jamba", "starcoder", "codegen", "e5", "bge", "nomic", "sam",
    "dinov2",
]  # fmt: skip
VARIANTS = ["base", "instruct", "chat", "code", "vision", "embed", "distilled", "merged"]
FORMATS = ["safetensors", "gguf", "fp16", "bf16", "int8", "awq", "gptq", "onnx"]
DATASETS = [
    "climate", "imagenet", "commoncrawl", "wikipedia", "arxiv", "github", "librispeech",
    "openwebtext", "laion", "coco", "squad", "mmlu", "gsm8k", "humaneval", "pile", "c4",
]  # fmt: skip
CATEGORIES = ["models", "datasets", "tools"]
QUERIES = ["llama", "qwen-7b", "instruct", "gguf", "v12", "climate-2019", "nomatchatall", "base"]
SHORT_QUERIES = ["sd", "7b", "ll"]  # under 3 characters: no trigram to look up, a scan


def make_rows(n: int, rng: random.Random) -> list[tuple[Any, ...]]:
    rows = []
    now = time.time()
    for i in range(n):
        category = CATEGORIES[i % 3]
        if category == "datasets":
            base = rng.choice(DATASETS)
            name = f"{base}-{rng.randint(2000, 2026)}-{rng.choice(['full', 'sample', 'v2'])}"
            tags = f"{base},dataset,{rng.choice(['text', 'audio', 'image'])}"
        else:
            family = rng.choice(FAMILIES)
            size = rng.choice([1, 3, 7, 8, 13, 34, 70])
            name = f"{family}-{size}b-{rng.choice(VARIANTS)}-v{rng.randint(1, 40)}"
            tags = f"{family},{rng.choice(FORMATS)},{rng.choice(['llm', 'vision', 'audio'])}"
        rows.append(
            (
                rng.randbytes(32).hex(),
                rng.randbytes(20).hex(),
                name,
                f"publisher-{rng.randint(1, 200)}",
                category,
                tags,
                rng.randint(1, 10**11),
                rng.choice([0] * 4 + [rng.randint(1, 5000)]),
                now - (n - i) * 10.0,
            )
        )
    return rows


COLUMNS = "info_hash, v1_info_hash, name, publisher, category, tags, size, completions, created_at"


def fill_sqlite(path: str, rows: list[tuple[Any, ...]]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO registry ({COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(*r, r[-1]) for r in rows],
    )
    conn.execute("COMMIT")
    conn.close()


def settle_sqlite(path: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("ANALYZE")
    conn.close()


def fill_postgres(dsn: str, rows: list[tuple[Any, ...]]) -> None:
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        execute_values(
            cur,
            f"INSERT INTO registry ({COLUMNS}, updated_at) VALUES %s",
            [(*r, r[-1]) for r in rows],
            page_size=5000,
        )
    conn.close()


def settle_postgres(dsn: str) -> None:
    """What autovacuum does soon after bulk writes: statistics, and the visibility map that
    index-only scans (count(*) for X-Total-Count) need."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE registry")
    conn.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def timed(runs: int, call: Callable[[int], Awaitable[Any]]) -> dict[str, float]:
    for i in range(min(10, runs)):  # warm caches and connections
        await call(i)
    took = []
    for i in range(runs):
        started = time.perf_counter()
        await call(i)
        took.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(percentile(took, 50), 2),
        "p99_ms": round(percentile(took, 99), 2),
        "mean_ms": round(statistics.fmean(took), 2),
    }


SEARCHES: dict[str, Callable[[int], dict[str, str]]] = {
    "q": lambda i: {"q": QUERIES[i % len(QUERIES)]},
    "q (2 chars)": lambda i: {"q": SHORT_QUERIES[i % len(SHORT_QUERIES)]},
    "category": lambda i: {"category": CATEGORIES[i % 3]},
    "sort=seeders": lambda i: {"sort": "seeders"},
}


async def bench_backend(
    reactor: Any,
    name: str,
    store: IStore,
    fill: Callable[[], None],
    settle: Callable[[], None],
    a: argparse.Namespace,
) -> dict[str, Any]:
    await store.open()
    started = time.perf_counter()
    fill()
    filled = time.perf_counter() - started
    snapshot = await store.snapshot()
    catalog = Catalog()
    catalog.load(snapshot.entries, snapshot.blocked)
    rng = random.Random(2)
    swarms = SwarmStore(rng.random)
    # live peers on a fifth of the entries (Zipf-ish), as announces would leave them
    peer = 0
    for rank, entry in enumerate(rng.sample(snapshot.entries, len(snapshot.entries) // 5)):
        for _ in range(max(1, 200 // (rank + 1))):
            peer += 1
            addr = peer.to_bytes(4, "big") + b"\x1a\xe1"
            swarms.put(entry.swarm_key, addr, b"-BN0001-%012d" % peer, peer % 3 == 0, 1)
    live = LiveRegistry(catalog, swarms)
    publisher = CountsPublisher(live, store, reactor)
    started = time.perf_counter()
    counts = live.all_counts()
    all_counts_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    live.counts_in(list(swarms.swarms)[:COUNTS_SLICE])
    slice_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    await publisher.publish()
    publish_s = time.perf_counter() - started
    settle()

    registry = RegistryService(
        store, live, PendingWrites(), reactor, pool_runner(reactor), timeout=30.0
    )
    api = RegistryAPI(registry, RateLimiter(0, 1), ClientIP(), reactor)
    port = reactor.listenTCP(0, Site(api.resource()), interface="127.0.0.1")
    url = f"http://127.0.0.1:{port.getHost().port}/registry/search"
    pool = HTTPConnectionPool(reactor, persistent=True)

    async def via_store(params: dict[str, str]) -> None:
        query = Search(
            q=params.get("q"),
            category=params.get("category"),
            sort=params.get("sort", "created_at"),
        )
        await store.search(query)

    async def via_api(params: dict[str, str]) -> None:
        response = await treq.get(url, params=params, pool=pool)
        assert response.code == 200, response.code
        await response.content()

    results: dict[str, Any] = {
        "entries": len(snapshot.entries),
        "fill_s": round(filled, 1),
        "entries_with_peers": len(counts),
        "all_counts_ms": round(all_counts_ms, 1),  # in the tracker: in slices of COUNTS_SLICE
        "count_slice_ms": round(slice_ms, 2),  # the longest the reactor waits for it
        "first_save_counts_s": round(publish_s, 2),
        "search": {},
    }
    for kind, params in SEARCHES.items():
        results["search"][kind] = {
            "store": await timed(a.runs, lambda i, p=params: via_store(p(i))),  # type: ignore[misc]
            "api": await timed(a.runs, lambda i, p=params: via_api(p(i))),  # type: ignore[misc]
        }
        print(f"  {name:10} {kind:13} {results['search'][kind]}", flush=True)
    await pool.closeCachedConnections()
    await port.stopListening()
    await store.close()
    return results


async def run(reactor: Any, a: argparse.Namespace) -> None:
    rows = make_rows(a.entries, random.Random(1))
    summary: dict[str, Any] = {"entries": a.entries, "runs": a.runs, "backends": {}}
    if "sqlite" in a.backends:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "registry.db")
            store = SQLiteStore(path, reactor)
            summary["backends"]["sqlite"] = await bench_backend(
                reactor,
                "sqlite",
                store,
                lambda: fill_sqlite(path, rows),
                lambda: settle_sqlite(path),
                a,
            )
    if "postgresql" in a.backends:
        server = os.environ.get("WEIGHTLESS_BENCH_DATABASE_URL", PG_DEFAULT)
        schema = "wl_bench_" + uuid.uuid4().hex[:10]
        admin = psycopg2.connect(server)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
            cur.execute(f"CREATE SCHEMA {schema}")
        try:
            dsn = make_dsn(server, options=f"-c search_path={schema},public")
            store = PostgresStore(dsn, reactor)
            summary["backends"]["postgresql"] = await bench_backend(
                reactor,
                "postgresql",
                store,
                lambda: fill_postgres(dsn, rows),
                lambda: settle_postgres(dsn),
                a,
            )
        finally:
            with admin.cursor() as cur:
                cur.execute(f"DROP SCHEMA {schema} CASCADE")
            admin.close()
    print()
    print(f"search latency, {a.entries:,} entries, {a.runs} runs each, milliseconds (p50 / p99)")
    columns = ("store p50", "store p99", "api p50", "api p99")
    print(f"{'backend':11} {'query':14} " + " ".join(f"{c:>10}" for c in columns))
    for backend, result in summary["backends"].items():
        for kind, levels in result["search"].items():
            s, h = levels["store"], levels["api"]
            print(
                f"{backend:11} {kind:14} {s['p50_ms']:10.2f} {s['p99_ms']:10.2f} "
                f"{h['p50_ms']:10.2f} {h['p99_ms']:10.2f}"
            )
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=2) + "\n")
        print(f"written to {a.json}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=200, help="timed searches per query kind")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--json", help="also write the summary to this file")
    a = ap.parse_args()
    a.backends = a.backends.split(",")
    task.react(lambda reactor: defer.ensureDeferred(run(reactor, a)))


if __name__ == "__main__":
    main()
