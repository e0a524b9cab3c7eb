"""/health right after start with --workers 3: many clients at once from the first moment,
some of which hang up before their answer (as a load balancer's probes with a short timeout
do while a worker is still starting). No worker answers 503 while the database is up."""

from __future__ import annotations

import http.client
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from integration.process import TWISTD, Tracker
from integration.waiting import wait_for

pytestmark = pytest.mark.integration
ANSWERS = 300  # answers to collect from the first moment on
DEADLINE = 120.0  # seconds: a bound for a failure only


def hang_up(port: int, source: str) -> None:
    """A request for /health, and the connection closed before any answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=2, source_address=(source, 0)) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: tracker.example\r\n\r\n")


def ask(port: int, source: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20, source_address=(source, 0))
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_no_worker_reports_the_database_down_as_it_starts(
    tmp_path: Path, trackers: list[Tracker]
) -> None:
    """On SQLite, whose ping answers within the 2 s a ping has on any machine: a 503 here is
    the health check's own doing."""
    tracker = Tracker(tmp_path, "--workers", "3")
    trackers.append(tracker)
    out = open(tmp_path / "twistd.log", "wb")  # noqa: SIM115 (closed below)
    tracker.out = tmp_path / "twistd.log"
    tracker.proc = subprocess.Popen(
        [str(TWISTD), "-n", "--pidfile=", "weightless", *tracker.args],
        cwd=tmp_path,
        env=tracker.env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    answers: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    first: list[float] = []
    stop = threading.Event()

    def poll(n: int) -> None:
        i = 0
        while not stop.is_set() and answers[200] < ANSWERS:
            source = f"127.4.{n}.{i % 250 + 2}"
            i += 1
            try:
                if n % 3 == 0:
                    hang_up(tracker.port, source)
                    time.sleep(0.01)
                    continue
                status = ask(tracker.port, source)
            except OSError as e:  # not listening yet
                errors[type(e).__name__] += 1
                time.sleep(0.005)
                continue
            answers[status] += 1
            if not first:
                first.append(time.monotonic())

    threads = [threading.Thread(target=poll, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: bool(first), lambda: f"a first answer:\n{tracker.log()}", 60)
    finally:
        for t in threads:
            t.join(timeout=DEADLINE)
        stop.set()
        out.close()
    assert answers[200] >= ANSWERS, (answers, errors)
    assert set(answers) == {200}, (answers, tracker.log()[-3000:])
    assert "database unreachable" not in tracker.log()
    tracker.stop()
