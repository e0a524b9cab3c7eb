"""Damaged state files on a real ``twistd -n weightless``: a damaged state file in the working
directory is set aside as NAME.corrupt, the reason is logged, and the tracker serves."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import announce_path, compact_peers

from integration.ports import free_port
from integration.process import TRACKER_ENV, TWISTD, Tracker

pytestmark = pytest.mark.integration

DAMAGE = {
    "empty": b"",
    "truncated": b'{"completions": {"ab',
    "wrong shape": b'{"completions": {}}',  # valid JSON, but no "traffic"
    "wrong types": b'{"completions": {"x": "1"}, "traffic": {"u": [1.5, -2]}}',
    "binary": b"\x00\xff\x13\x37" * 64,
}


def served(tracker: Tracker) -> None:
    info_hash = hashlib.sha1(b"state files").digest()
    tracker.announce(announce_path(info_hash, 6881, event="started"))
    reply = tracker.announce(announce_path(info_hash, 6882, event="started"))
    assert compact_peers(reply[b"peers"]) == [("127.0.0.1", 6881)]


def start_with(
    new_tracker: Callable[..., Tracker], tmp_path: Path, name: str, content: bytes, *args: str
) -> Tracker:
    (tmp_path / name).write_bytes(content)
    tracker = new_tracker("--open", "--rate-limit", "0", *args).start()
    served(tracker)
    assert not (tmp_path / name).exists() or name.endswith("udp-key")
    assert (tmp_path / f"{name}.corrupt").read_bytes() == content
    log = tracker.log()
    assert "damaged state file" in log and name in log, log
    tracker.stop()
    return tracker


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_pending_file(
    new_tracker: Callable[..., Tracker], tmp_path: Path, kind: str
) -> None:
    start_with(new_tracker, tmp_path, "weightless.pending.4242", DAMAGE[kind])


@pytest.mark.parametrize("kind", ["truncated", "wrong shape", "binary"])
def test_damaged_baselines_file(
    new_tracker: Callable[..., Tracker], tmp_path: Path, kind: str
) -> None:
    (tmp_path / "weightless.pending-baselines.99").write_bytes(DAMAGE[kind])
    tracker = new_tracker("--open", "--rate-limit", "0", env={"TRACKER_SECRET": "s"}).start()
    assert (tmp_path / "weightless.pending-baselines.99.corrupt").read_bytes() == DAMAGE[kind]
    assert "damaged state file" in tracker.log()
    tracker.stop()


@pytest.mark.parametrize(
    "content",
    [b"", b"WLSWARM1" + b"\xff" * 40, b"WLSWARM1" + bytes(27), b"garbage" * 100],
    ids=["empty", "huge counts", "truncated", "garbage"],
)
def test_damaged_swarm_file(
    new_tracker: Callable[..., Tracker], tmp_path: Path, content: bytes
) -> None:
    start_with(new_tracker, tmp_path, "weightless.swarms", content)


@pytest.mark.parametrize("content", [b"", b"short", b"\xff" * 33], ids=["empty", "short", "long"])
def test_damaged_udp_key_file(
    new_tracker: Callable[..., Tracker], tmp_path: Path, content: bytes
) -> None:
    start_with(new_tracker, tmp_path, "weightless.udp-key", content, "--udp", str(free_port()))
    assert len((tmp_path / "weightless.udp-key").read_bytes()) == 32


def test_an_unreadable_state_file_exits_with_one_line(tmp_path: Path) -> None:
    """Not damaged but unusable (a directory where the key file goes): exit non-zero with one
    line, never run without listening."""
    (tmp_path / "weightless.udp-key").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in TRACKER_ENV}
    port = free_port()
    proc = subprocess.run(
        [
            str(TWISTD),
            "-n",
            "--pidfile=",
            "weightless",
            "--http",
            f"tcp:{port}:interface=127.0.0.1",
            "--udp",
            str(free_port()),
            "--database",
            f"sqlite:///{tmp_path / 'db'}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode != 0
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("weightless: could not start:"), proc.stderr


def test_damaged_files_with_three_workers(tmp_path: Path, trackers: list[Tracker]) -> None:
    """Every worker claims kept files at start: a damaged one is set aside once, the good one
    next to it is taken once, and every worker serves."""
    from integration.test_workers import cluster

    (tmp_path / "weightless.pending.4242").write_bytes(DAMAGE["wrong shape"])
    (tmp_path / "weightless.pending.4243").write_bytes(DAMAGE["binary"])
    (tmp_path / "weightless.swarms").write_bytes(b"WLSWARM1" + b"\xff" * 40)
    tracker = cluster(tmp_path, trackers, "--open").start()
    served(tracker)
    assert sorted(p.name for p in tmp_path.glob("weightless.*.corrupt")) == [
        "weightless.pending.4242.corrupt",
        "weightless.pending.4243.corrupt",
        "weightless.swarms.corrupt",
    ]
    tracker.stop()
