"""A Redis server for the tests: Debian's ``redis-server`` started on a free port, no
persistence. Without it, Redis tests skip loudly, or fail when WEIGHTLESS_REQUIRE_REDIS=1 (as CI
sets it)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

MISSING: list[str] = []  # why Redis tests did not run, for the summary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def skip_or_fail(why: str) -> None:
    if os.environ.get("WEIGHTLESS_REQUIRE_REDIS"):
        pytest.fail(f"Redis tests must run (WEIGHTLESS_REQUIRE_REDIS is set): {why}")
    MISSING.append(why)
    pytest.skip(f"Redis tests SKIPPED: {why}")


class RedisServer:
    """One redis-server process on its own port; ``stop`` and ``start`` again keep the port
    (an outage and the recovery, as an operator would see them)."""

    def __init__(self, port: int | None = None) -> None:
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="wl-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if not os.path.exists(self.binary):
            skip_or_fail("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.command(b"PING") == b"+PONG\r\n":
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        skip_or_fail(f"redis-server did not answer on port {self.port}")

    def command(self, *words: bytes) -> bytes:
        """Send one command, return the raw reply (small replies only)."""
        request = b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(request)
            return s.recv(65536)

    def flush(self) -> None:
        self.command(b"FLUSHALL")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
