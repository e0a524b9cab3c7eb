"""The ``weightless`` command as its users run it: a real console script in a subprocess,
against a real tracker, with content whose names have spaces, non-ASCII and an empty file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from integration.ports import free_port
from integration.process import Tracker
from integration.waiting import wait_for

WEIGHTLESS = Path(sys.executable).with_name("weightless")
KEY = "client test registry key"
RUN_TIMEOUT = 180.0  # bounds one command that should end (a hang), not how long it may take
STOP_TIMEOUT = 60.0  # for a command to end after Ctrl-C
# the client's own settings that whoever runs the tests may have set
CLIENT_ENV = (
    "WL_TRACKER",
    "WL_API_KEY",
    "WL_PASSKEY",
    "WL_LISTEN",
    "WL_UDP_PORT",
    "WL_ANNOUNCE_VIA",
    "WL_CACHE",
)


def make_folder(root: Path, name: str = "mödel weights v1") -> Path:
    """Several files: one empty, names with spaces and non-ASCII, one in a sub folder."""
    folder = root / name
    (folder / "sub dir").mkdir(parents=True)
    (folder / "weights part 1.bin").write_bytes(os.urandom(1_500_000))
    (folder / "tökenizer.json").write_text(json.dumps({"vocab": os.urandom(8).hex()}))
    (folder / "empty file.txt").write_bytes(b"")
    (folder / "sub dir" / "ñ 2.bin").write_bytes(os.urandom(300_001))
    return folder


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@contextmanager
def sigint_default_in_children() -> Iterator[None]:
    """Processes started inside have SIGINT at its default action, as a command typed in a
    terminal has, even when the tests themselves run with SIGINT ignored (started by nohup-like
    CI launchers, or as ``cmd &`` from a script).

    An ignored signal stays ignored across exec, and a Python program (``weightless``) keeps
    an ignored SIGINT ignored, so the Ctrl-C that ``Client.interrupt`` sends would go unheard.
    Around the fork this process catches SIGINT with a handler that does nothing (for the
    tests it is still ignored); exec resets a caught signal to its default. Unlike a
    ``preexec_fn``, this runs no Python code in the child, which is unsafe in a process with
    threads."""
    if (
        signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class Client:
    """Runs ``weightless`` with a tracker's URL and ports in its environment, and a cache
    directory of its own (``cache``)."""

    def __init__(self, tracker: Tracker, workdir: Path, udp_port: int | None = None) -> None:
        self.tracker = tracker
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
        self.env.pop("TRACKER_SECRET", None)
        self.env.pop("REGISTRY_KEY", None)
        self.env.update(
            WL_TRACKER=f"http://127.0.0.1:{tracker.port}",
            WL_LISTEN="127.0.0.1:0",
            WL_UDP_PORT=str(udp_port) if udp_port else "off",
            WL_CACHE=str(workdir / "cache"),
        )
        self.cache = workdir / "cache"
        self.background: list[tuple[subprocess.Popen[bytes], Path]] = []

    def run(self, *args: str, env: dict[str, str] | None = None, ok: bool = True) -> Any:
        with sigint_default_in_children():
            result = subprocess.run(
                [str(WEIGHTLESS), *args],
                cwd=self.workdir,
                env={**self.env, **(env or {})},
                capture_output=True,
                timeout=RUN_TIMEOUT,
            )
        if ok:
            assert result.returncode == 0, result.stderr.decode(errors="replace")
        return result

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return json.loads(self.run(*args, "--json", env=env).stdout)

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """A long-running command (seed, get --seed); its stderr goes to a file."""
        log = self.workdir / f"bg-{len(self.background)}.err"
        with open(log, "wb") as err, sigint_default_in_children():
            proc = subprocess.Popen(
                [str(WEIGHTLESS), *args],
                cwd=self.workdir,
                env={**self.env, **(env or {})},
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self.background.append((proc, log))
        return proc

    def wait_seeding(self, proc: subprocess.Popen[bytes], deadline: float) -> None:
        """Until the command says it is seeding; fails at once if it exits."""

        def seeding() -> bool:
            said = b"seeding " in self.stderr_of(proc).encode()
            assert said or proc.poll() is None, self.stderr_of(proc)
            return said

        wait_for(seeding, lambda: f"seeding:\n{self.stderr_of(proc)}", deadline=deadline)

    def interrupt(self, proc: subprocess.Popen[bytes]) -> int:
        """Ctrl-C, as a person stops it; returns the exit status."""
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise

    def stderr_of(self, proc: subprocess.Popen[bytes]) -> str:
        return next(log for p, log in self.background if p is proc).read_text(errors="replace")

    def close(self) -> None:
        for proc, _ in self.background:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def start_tracker(
    workdir: Path, *, udp: bool = True, env: dict[str, str] | None = None
) -> tuple[Tracker, int | None]:
    """A tracker on free ports (UDP on 127.0.0.1 when asked), registry key KEY."""
    udp_port = free_port() if udp else None
    args = ["--rate-limit", "0"]
    if udp_port:
        args += ["--udp", str(udp_port), "--udp-interface", "127.0.0.1"]
    tracker = Tracker(workdir, *args, env={"REGISTRY_KEY": KEY, **(env or {})})
    tracker.start()
    return tracker, udp_port


def web_server(root: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A web seed serving ``root`` (``web_seed.py``: byte ranges, pipelined requests)."""
    port = free_port()
    with open(workdir / f"web-{port}.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("web_seed.py")), str(root), str(port)],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def listening() -> bool:
        assert proc.poll() is None, (workdir / f"web-{port}.log").read_text(errors="replace")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except OSError:
            return False
        return True

    wait_for(listening, "the web seed to listen")
    return proc, port
