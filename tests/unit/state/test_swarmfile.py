"""Swarm snapshots on disk (weightless.state.swarmfile): what a clean stop saves, the next start
restores, without the peers past --peer-ttl or the swarms it is told not to keep; a missing
file is an empty start, and a crash mid-write leaves the previous file."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from weightless.state.swarmfile import SwarmFile
from weightless.tracker.swarm import SwarmStore

A, B = b"\xaa" * 20, b"\xbb" * 20


def v4(i: int) -> bytes:
    return i.to_bytes(4, "big") + b"\x1a\xe1"


def store() -> SwarmStore:
    return SwarmStore(random.Random(1).random)


def peer_sets(swarms: SwarmStore) -> dict[bytes, int]:
    return {key: len(swarm) for key, swarm in swarms.swarms.items() if len(swarm)}


def saved(path: Path) -> SwarmStore:
    """Two swarms: A with three peers last seen at 1000, B with one seen at 100."""
    swarms = store()
    for i in range(3):
        swarms.put(A, v4(i), b"-XX0001-%012d" % i, i == 0, 1000)
    swarms.put(B, v4(9), b"-XX0001-%012d" % 9, False, 100)
    SwarmFile(str(path), swarms, 3600, lambda: 1000.0).save()
    return swarms


def test_what_a_clean_stop_saves_the_next_start_restores(tmp_path: Path) -> None:
    path = tmp_path / "swarms.bin"
    before = saved(path)
    after = store()
    assert SwarmFile(str(path), after, 3600, lambda: 1500.0).restore() == 4
    assert peer_sets(after) == peer_sets(before) == {A: 3, B: 1}
    assert after.swarms[A].counts() == before.swarms[A].counts() == (1, 2)


def test_peers_past_the_peer_ttl_are_not_restored(tmp_path: Path) -> None:
    path = tmp_path / "swarms.bin"
    saved(path)
    after = store()
    # now 1500, ttl 1000: the peer seen at 100 is gone, those seen at 1000 come back
    assert SwarmFile(str(path), after, 1000, lambda: 1500.0).restore() == 3
    assert peer_sets(after) == {A: 3}


def test_swarms_the_tracker_no_longer_keeps_are_left_out(tmp_path: Path) -> None:
    path = tmp_path / "swarms.bin"
    saved(path)
    after = store()
    assert SwarmFile(str(path), after, 3600, lambda: 1500.0, keep=lambda k: k != A).restore() == 1
    assert peer_sets(after) == {B: 1}


def test_no_file_is_an_empty_start(tmp_path: Path) -> None:
    swarms = store()
    assert SwarmFile(str(tmp_path / "never-written"), swarms, 3600, lambda: 0.0).restore() == 0
    assert swarms.peer_count == 0


def test_save_goes_to_the_write_path_when_given(tmp_path: Path) -> None:
    read, write = tmp_path / "from.bin", tmp_path / "to.bin"
    swarms = store()
    swarms.put(A, v4(1), b"-XX0001-%012d" % 1, False, 10)
    SwarmFile(str(read), swarms, 3600, lambda: 10.0, write_path=str(write)).save()
    assert write.exists() and not read.exists()
    assert SwarmFile(str(write), store(), 3600, lambda: 10.0).restore() == 1


def test_a_crash_mid_write_leaves_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "swarms.bin"
    saved(path)
    previous = path.read_bytes()
    swarms = store()
    swarms.put(A, v4(5), b"-XX0001-%012d" % 5, False, 1000)

    def crash(fd: int) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk gone"):
        SwarmFile(str(path), swarms, 3600, lambda: 1000.0).save()
    assert path.read_bytes() == previous
    assert not any(p.name == "swarms.bin" and p != path for p in tmp_path.iterdir())


def test_a_damaged_file_is_set_aside_and_the_start_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "swarms.bin"
    saved(path)
    path.write_bytes(path.read_bytes()[:7] + b"\xff" * 5)
    swarms = store()
    SwarmFile(str(path), swarms, 3600, lambda: 1000.0).restore()
    assert not path.exists()
    assert (tmp_path / "swarms.bin.corrupt").exists()
