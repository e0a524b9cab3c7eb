"""Every state file read at start that is damaged or of the wrong shape is set aside as
NAME.corrupt with the reason logged, and the start goes on without it."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import globalLogPublisher

from weightless.state import pendingfile
from weightless.state.keyfile import KEY_BYTES, load_or_create
from weightless.state.swarmfile import SwarmFile
from weightless.tracker.accounting import Accounting, PendingWrites
from weightless.tracker.snapshot import dump
from weightless.tracker.swarm import SwarmStore

MAX = (1 << 63) - 1
V2 = "ab" * 32


@pytest.fixture
def errors() -> Iterator[list[str]]:
    """Error-level log lines, formatted."""
    from twisted.logger import formatEvent

    found: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        level = event.get("log_level")
        if level is not None and level.name == "error":
            found.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    yield found
    globalLogPublisher.removeObserver(observe)


def good_pending() -> dict[str, Any]:
    return {"completions": {V2: 2}, "traffic": {"alice": [10, 20]}}


BAD_PENDING: list[bytes] = [
    b"",  # empty
    b'{"completions": {V2',  # truncated
    json.dumps(good_pending()).encode()[:-3],  # truncated valid file
    b'{"completions": {}}',  # valid JSON, but no traffic
    b'{"traffic": {}}',
    b"[]",
    b"null",
    b"42",
    b'"text"',
    b'{"completions": [], "traffic": {}}',
    b'{"completions": {"x": "3"}, "traffic": {}}',  # a string count
    b'{"completions": {"x": 1.5}, "traffic": {}}',  # a float
    b'{"completions": {"x": true}, "traffic": {}}',  # a bool is not a count
    b'{"completions": {"x": -1}, "traffic": {}}',  # negative
    b'{"completions": {}, "traffic": {"u": [1]}}',  # one total
    b'{"completions": {}, "traffic": {"u": [1, 2, 3]}}',
    b'{"completions": {}, "traffic": {"u": {"up": 1}}}',
    b'{"completions": {}, "traffic": {"u": [1, null]}}',
    b'{"completions": {}, "traffic": {"u": [1, "2"]}}',
    b"\x00\xff\xfe garbage \x89PNG\r\n\x1a\n",  # binary garbage
    b"\xef\xbb\xbf" + b"{",  # a BOM and nothing
    b"[" * 100_000,  # deeper than the JSON parser goes
]


@pytest.mark.parametrize("content", BAD_PENDING)
def test_a_damaged_pending_file_is_set_aside(
    tmp_path: Path, content: bytes, errors: list[str]
) -> None:
    path = tmp_path / "weightless.pending"
    (tmp_path / "weightless.pending.4242").write_bytes(content)
    (tmp_path / "weightless.pending.4243").write_text(json.dumps(good_pending()))
    queue = PendingWrites()
    pendingfile.restore_pending(queue, str(path))
    # the good file next to it is still taken
    assert queue.completions == {V2: 2} and queue.traffic == {"alice": [10, 20]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weightless.pending.4242.corrupt"]
    assert (tmp_path / "weightless.pending.4242.corrupt").read_bytes() == content
    assert len(errors) == 1 and "weightless.pending.4242" in errors[0]
    # and at the next start the .corrupt file is not read again
    again = PendingWrites()
    pendingfile.restore_pending(again, str(path))
    assert not again and len(errors) == 1


def test_kept_totals_above_the_limit_saturate(tmp_path: Path) -> None:
    (tmp_path / "weightless.pending.1").write_text(
        json.dumps({"completions": {V2: 10**30}, "traffic": {"u": [10**25, 3]}})
    )
    queue = PendingWrites()
    pendingfile.restore_pending(queue, str(tmp_path / "weightless.pending"))
    assert queue.completions == {V2: MAX} and queue.traffic == {"u": [MAX, 3]}


BAD_BASELINES: list[bytes] = [
    b"",
    b'{"peers": [["alice", "',
    b'{"peers": {}}',
    b'{"nobody": []}',
    b'{"peers": [["alice"]]}',
    b'{"peers": [["alice", "zz", "00", 1, 2, 3.0]]}',  # not hex
    b'{"peers": [["alice", "' + b"11" * 20 + b'", "0011", 1, 2, 3.0]]}',  # 2-byte address
    b'{"peers": [["alice", "' + b"11" * 20 + b'", "' + b"22" * 6 + b'", -1, 2, 3.0]]}',
    b'{"peers": [["alice", "' + b"11" * 20 + b'", "' + b"22" * 6 + b'", 1, 2, "now"]]}',
    b'{"peers": [[1, "' + b"11" * 20 + b'", "' + b"22" * 6 + b'", 1, 2, 3]]}',
    b"\x80\x81\x82",
]


@pytest.mark.parametrize("content", BAD_BASELINES)
def test_damaged_baselines_are_set_aside(tmp_path: Path, content: bytes, errors: list[str]) -> None:
    (tmp_path / "weightless.pending-baselines.7").write_bytes(content)
    accounting = Accounting(PendingWrites(), 3600)
    pendingfile.restore_baselines(accounting, str(tmp_path / "weightless.pending-baselines"))
    assert len(accounting) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["weightless.pending-baselines.7.corrupt"]
    assert len(errors) == 1


def snapshot_bytes() -> bytes:
    swarms = SwarmStore(random.random)
    for i in range(3):
        for port in range(5):
            swarms.put(
                bytes([i]) * 20,
                bytes([10, 0, 0, 1]) + port.to_bytes(2, "big"),
                b"p" * 20,
                False,
                1000,
            )
    return b"".join(dump(swarms))


def damaged_snapshots() -> list[bytes]:
    good = snapshot_bytes()
    return [
        b"",
        b"WLSWARM",  # a truncated magic
        good[:9],
        good[: len(good) // 2],
        good[:-1],
        good + b"\x01",  # a trailing partial record
        b"WLSWARM1" + b"\xff" * 200,  # huge counts
        b"not a snapshot at all",
        bytes(range(256)) * 4,
        b'{"swarms": []}',
    ]


@pytest.mark.parametrize("content", damaged_snapshots())
def test_a_damaged_swarm_file_is_set_aside(
    tmp_path: Path, content: bytes, errors: list[str]
) -> None:
    path = tmp_path / "weightless.swarms"
    path.write_bytes(content)
    swarms = SwarmStore(random.random)
    SwarmFile(str(path), swarms, 3600, lambda: 1000.0).restore()
    assert not path.exists()
    assert (tmp_path / "weightless.swarms.corrupt").read_bytes() == content
    assert len(errors) == 1 and "weightless.swarms" in errors[0]
    assert swarms.peer_count == sum(len(s) for s in swarms.swarms.values())


def test_a_good_swarm_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "weightless.swarms"
    path.write_bytes(snapshot_bytes())
    swarms = SwarmStore(random.random)
    assert SwarmFile(str(path), swarms, 3600, lambda: 1000.0).restore() == 15
    assert not (tmp_path / "weightless.swarms.corrupt").exists()


@pytest.mark.parametrize(
    "content", [b"", b"short", b"k" * (KEY_BYTES - 1), b"k" * (KEY_BYTES + 1), b"\xff" * 4096]
)
def test_a_damaged_key_file_is_set_aside_and_replaced(
    tmp_path: Path, content: bytes, errors: list[str]
) -> None:
    path = tmp_path / "weightless.udp-key"
    path.write_bytes(content)
    key = load_or_create(str(path))
    assert len(key) == KEY_BYTES and path.read_bytes() == key
    assert (tmp_path / "weightless.udp-key.corrupt").read_bytes() == content
    assert len(errors) == 1
