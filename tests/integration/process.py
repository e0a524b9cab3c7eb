"""A real ``twistd -n weightless`` process for integration tests: started on free ports with
its own SQLite file, talked to over real sockets, always killed at the end."""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import bdecode, scrape_path

from integration.ports import free_port
from integration.waiting import wait_for

TWISTD = Path(sys.executable).with_name("twistd")
# settings the tracker would otherwise pick up from the environment of whoever runs the tests
TRACKER_ENV = (
    "PORT",
    "WEIGHTLESS_HTTP",
    "WEIGHTLESS_UDP",
    "WEIGHTLESS_WORKERS",
    "DATABASE_URL",
    "DB_PATH",
    "OPEN_TRACKER",
    "TRACKER_SECRET",
    "REGISTRY_KEY",
    "MAX_PEERS",
    "WEIGHTLESS_SWARM_FILE",
)
START_TIMEOUT = 60.0  # bounds a failure only: a start is awaited as long as it takes
STOP_TIMEOUT = 60.0

V2 = hashlib.sha256(b"weightless hybrid").hexdigest()
V1 = hashlib.sha1(b"weightless hybrid").hexdigest()
V1_ONLY = hashlib.sha1(b"weightless v1 only").hexdigest()
BLOCKED = hashlib.sha1(b"weightless blocked").hexdigest()
UNREGISTERED = hashlib.sha1(b"weightless nobody").digest()


class Tracker:
    """One twistd process listening on 127.0.0.1 with its own SQLite file."""

    def __init__(
        self, workdir: Path, *args: str, env: dict[str, str] | None = None, db: Path | None = None
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.db = db or workdir / "tracker.db"
        self.args = [
            "--http",
            f"tcp:{self.port}:interface=127.0.0.1",
            "--udp",
            "off",
            "--database",
            f"sqlite:///{self.db}",
            *args,
        ]
        self.env = {k: v for k, v in os.environ.items() if k not in TRACKER_ENV}
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> Tracker:
        assert self.proc is None
        self.runs += 1
        self.out = self.workdir / f"twistd-{self.port}-{self.runs}.log"
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                [str(TWISTD), "-n", "--pidfile=", "weightless", *self.args],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._answering, lambda: f"twistd to answer /health:\n{self.log()}", START_TIMEOUT)
        return self

    def _answering(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"twistd exited at start:\n{self.log()}")
        try:
            return self.get(b"/health")[0] == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.out.read_text(errors="replace")

    def get(self, target: bytes) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", target.decode("ascii"))
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def announce(self, target: bytes) -> dict[bytes, Any]:
        status, _, body = self.get(target)
        assert status == 200, body
        decoded: dict[bytes, Any] = bdecode(body)
        return decoded

    def scrape(self, *info_hashes: bytes) -> dict[bytes, Any]:
        status, _, body = self.get(scrape_path(*info_hashes))
        assert status == 200, body
        files: dict[bytes, Any] = bdecode(body)[b"files"]
        return files

    def metric(self, name: str) -> float:
        status, _, body = self.get(b"/metrics")
        assert status == 200
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not in /metrics")

    def stop(self) -> None:
        """SIGTERM, as systemd or docker stop it; fails unless it shuts down cleanly."""
        assert self.proc is not None
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"twistd did not stop on SIGTERM:\n{self.log()}") from None
        log = self.log()
        # twistd ends by re-raising the signal it stopped on, so -SIGTERM is a normal exit
        assert code in (0, -signal.SIGTERM), log
        assert "Server Shut Down." in log, log
        assert "Traceback" not in log, log

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def seed(
    tracker: Tracker, entries: list[tuple[str, str | None, str]], blocked: tuple[str, ...] = ()
) -> None:
    """Registry rows (info_hash, v1_info_hash, name) and blocked hashes in the tracker's
    database, written while it is stopped, into the schema it created itself."""
    tracker.start()
    tracker.stop()
    conn = sqlite3.connect(tracker.db)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO registry (info_hash, v1_info_hash, name, created_at, updated_at) "
                "VALUES (?, ?, ?, 0, 0)",
                entries,
            )
            conn.executemany(
                "INSERT INTO blocklist (info_hash, reason, blocked_at) VALUES (?, 'test', 0)",
                [(h,) for h in blocked],
            )
    finally:
        conn.close()


def query_db(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


# -- open mode
