"""Whole-file writes: the new content or the old one, never a part; exactly the mode given;
no temporary file left behind; a key file never replaced; importable without the tracker."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from weightless.state.atomic import PUBLIC, SECRET, write_atomic


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_bytes_or_chunks(tmp_path: Path) -> None:
    path = tmp_path / "file"
    write_atomic(path, b"one", PUBLIC)
    assert path.read_bytes() == b"one"
    write_atomic(str(path), iter([b"t", b"w", b"o"]), PUBLIC)
    assert path.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["file"]


def test_a_failure_mid_write_leaves_the_old_content_and_no_temporary_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "snapshot"
    path.write_bytes(b"old")

    def chunks() -> Iterator[bytes]:
        yield b"half of the new"
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        write_atomic(path, chunks(), PUBLIC)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["snapshot"]


def test_a_failure_before_the_first_write_leaves_no_file(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        raise OSError(28, "No space left on device")
        yield b""

    with pytest.raises(OSError, match="No space"):
        write_atomic(tmp_path / "new", chunks(), PUBLIC)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_the_mode_is_exactly_the_one_given(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "key", b"k", SECRET)
        write_atomic(tmp_path / "data", b"d", PUBLIC)
        write_atomic(tmp_path / "kept", b"x", 0o640)
    finally:
        os.umask(old)
    assert (mode(tmp_path / "key"), mode(tmp_path / "data")) == (0o600, 0o644)
    assert mode(tmp_path / "kept") == 0o640


def test_replacing_takes_the_new_mode(tmp_path: Path) -> None:
    path = tmp_path / "file"
    write_atomic(path, b"a", PUBLIC)
    write_atomic(path, b"b", SECRET)
    assert (path.read_bytes(), mode(path)) == (b"b", 0o600)


def test_without_overwrite_an_existing_file_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "publisher.key"
    write_atomic(path, b"first", SECRET, overwrite=False)
    with pytest.raises(FileExistsError):
        write_atomic(path, b"second", SECRET, overwrite=False)
    assert path.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["publisher.key"]


def test_a_missing_directory_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "no" / "such" / "file", b"x", PUBLIC)


def test_a_relative_path_is_written_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_atomic("here", b"x", PUBLIC)
    assert (tmp_path / "here").read_bytes() == b"x"


def test_importing_it_loads_neither_the_tracker_nor_twisted() -> None:
    """The client writes its files with it, and imports nothing of the tracker."""
    code = (
        "import sys, weightless.state.atomic; "
        "print(sorted(m for m in sys.modules if m.startswith(('twisted', 'weightless.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['weightless.state', 'weightless.state.atomic']"
