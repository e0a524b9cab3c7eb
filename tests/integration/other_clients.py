"""BitTorrent clients that are not libtorrent (Debian's rtorrent and aria2), run as real
processes on loopback against the tracker, for the end-to-end tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest

REQUIRE = "WEIGHTLESS_REQUIRE_CLIENTS"


def need(command: str, package: str) -> str:
    """The path of ``command``; skips the test where it is missing (fails instead with
    WEIGHTLESS_REQUIRE_CLIENTS=1, as CI sets it)."""
    found = shutil.which(command)
    if found is not None:
        return found
    reason = (
        f"{command} is not installed, so the end-to-end test with a client other than "
        f"libtorrent is SKIPPED: install it with `apt-get install -y {package}`"
    )
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} (and {REQUIRE}=1)")
    pytest.skip(reason)


def make_torrent(content: Path, announce: str, v1_only: bool, piece_size: int) -> bytes:
    """A torrent of ``content`` (a file or a folder) with ``announce`` in it: v1-only, or
    hybrid (v1 + v2, each file aligned to a piece with a pad file)."""
    flags = lt.create_torrent.v1_only if v1_only else 0
    ct = lt.create_torrent(lt.list_files(str(content)), piece_size, flags=flags)
    ct.add_tracker(announce)
    lt.set_piece_hashes(ct, str(content.parent))
    return bytes(lt.bencode(ct.generate()))


def write_pad_files(torrent: bytes, save_path: Path) -> int:
    """Create the BEP 47 pad files of a hybrid torrent as zero-filled files under
    ``save_path``, where a client that does not know pad files (rtorrent) looks for them
    before it will seed the original data. Returns how many were written."""
    info = lt.bdecode(torrent)[b"info"]
    written = 0
    for entry in info.get(b"files", []):
        if b"p" not in entry.get(b"attr", b""):
            continue
        path = save_path.joinpath(info[b"name"].decode(), *(p.decode() for p in entry[b"path"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.truncate(entry[b"length"])
        written += 1
    return written


class Process:
    """A client process with its output in a file; killed at the end whatever happened."""

    def __init__(self, name: str, args: list[str], workdir: Path) -> None:
        self.name = name
        self.out = workdir / f"{name}.out"
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                args, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def log(self) -> str:
        return self.out.read_text(errors="replace")[-4000:]

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not finish in time:\n{self.log()}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def rtorrent(
    binary: str, workdir: Path, torrent: Path, save_path: Path, port: int, **extra: Any
) -> Process:
    """rtorrent 0.9 as a daemon (no terminal): no DHT, no PEX, bound to 127.0.0.1, starting
    ``torrent`` with its data in ``save_path``; its log (tracker requests included) in
    ``workdir/rtorrent.log``."""
    session = workdir / "rtorrent-session"
    session.mkdir()
    settings = [
        "system.daemon.set=true",
        f"directory.default.set={save_path}",
        f"session.path.set={session}",
        f"network.port_range.set={port}-{port}",
        "network.port_random.set=no",
        "network.bind_address.set=127.0.0.1",
        "dht.mode.set=disable",
        "protocol.pex.set=no",
        "trackers.use_udp.set=no",
        f'log.open_file = "main", "{workdir / "rtorrent.log"}"',
        'log.add_output = "info", "main"',
        'log.add_output = "tracker_debug", "main"',
        *(f"{key.replace('__', '.')}={value}" for key, value in extra.items()),
        f'schedule2 = start_it, 1, 0, ((load.start_verbose, "{torrent}"))',
    ]
    # a file of its own: -o splits a value at commas
    rc = workdir / "rtorrent.rc"
    rc.write_text("\n".join(settings) + "\n")
    return Process("rtorrent", [binary, "-n", "-o", f"import={rc}"], workdir)


def aria2c(binary: str, workdir: Path, torrent: Path, save_path: Path, port: int) -> Process:
    """aria2c downloading ``torrent`` into ``save_path`` and exiting when done
    (``--seed-time=0``: it finishes without sending event=completed); no DHT (so no UDP
    trackers either), no local discovery, no PEX."""
    args = [
        binary,
        f"--dir={save_path}",
        "--seed-time=0",
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        f"--listen-port={port}",
        "--file-allocation=none",
        "--summary-interval=0",
        "--console-log-level=notice",
        f"--log={workdir / 'aria2.log'}",
        "--log-level=info",
        "--bt-stop-timeout=60",
        str(torrent),
    ]
    return Process("aria2c", args, workdir)
