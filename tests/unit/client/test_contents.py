"""Which files of a folder `create` and `publish` put in a torrent (weightless.client.contents
and create_torrent): version-control and OS litter left out, --exclude globs, and symbolic
links: inside the folder a regular file, anything else refused naming the link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from weightless.client.contents import excluded, selected
from weightless.client.errors import ClientError
from weightless.client.torrents import create_torrent


def folder(root: Path) -> Path:
    top = root / "model"
    for name in [
        "config.json",
        "weights/part-1.bin",
        "weights/part-2.bin",
        "logs/run.txt",
        ".git/HEAD",
        ".git/objects/ab/cdef",
        "sub/.hg/store",
        "sub/.svn/entries",
        "src/__pycache__/m.cpython-311.pyc",
        ".DS_Store",
        "weights/Thumbs.db",
        ".gitignore",  # not .git: kept
        "sub/keep.txt",
    ]:
        path = top / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode() * 100)
    return top


def files_of(top: Path, exclude: tuple[str, ...] = ()) -> list[str]:
    made = create_torrent(top, trackers=["http://t/announce"], exclude=exclude)
    return sorted(path for path, _ in made.info.files)


def test_litter_is_left_out(tmp_path: Path) -> None:
    assert files_of(folder(tmp_path)) == [
        ".gitignore",
        "config.json",
        "logs/run.txt",
        "sub/keep.txt",
        "weights/part-1.bin",
        "weights/part-2.bin",
    ]


@pytest.mark.parametrize(
    ("globs", "left"),
    [
        (("logs",), ["logs/run.txt"]),  # a folder and all under it
        (("*.txt",), ["logs/run.txt", "sub/keep.txt"]),  # * also matches /
        (("weights/part-2.bin", "config.*"), ["config.json", "weights/part-2.bin"]),
        (("sub/*",), ["sub/keep.txt"]),
        (("nothing-matches",), []),
    ],
)
def test_exclude_globs(tmp_path: Path, globs: tuple[str, ...], left: list[str]) -> None:
    every = files_of(folder(tmp_path))
    assert files_of(tmp_path / "model", globs) == [f for f in every if f not in left]


def test_excluded_matches_a_path_or_a_folder_above_it() -> None:
    assert excluded("logs/a/b.txt", ["logs"]) and excluded("logs/a/b.txt", ["logs/a"])
    assert excluded("a/b.bin", ["*.bin"]) and not excluded("a/b.bin", ["b"])
    assert not excluded("catalogs/x", ["logs"])


def test_a_link_outside_the_folder_is_refused_by_name(tmp_path: Path) -> None:
    top = folder(tmp_path)
    (tmp_path / "secret").write_text("not yours")
    os.symlink("/etc/passwd", top / "weights" / "passwd")
    with pytest.raises(ClientError) as e:
        create_torrent(top, trackers=[])
    message = str(e.value)
    assert message.startswith("weights/passwd in ") and "/etc/passwd, outside the folder" in message
    assert "\n" not in message
    (top / "weights" / "passwd").unlink()
    os.symlink("../../secret", top / "sub" / "up")  # relative, climbing out
    with pytest.raises(ClientError, match=r"sub/up in .* symbolic link to .*secret, outside"):
        create_torrent(top, trackers=[])
    # unless it is excluded
    assert "sub/up" not in files_of(top, ("sub/up",))


def test_a_link_inside_the_folder_is_a_regular_file(tmp_path: Path) -> None:
    top = folder(tmp_path)
    os.symlink("../config.json", top / "sub" / "config-link.json")
    made = create_torrent(top, trackers=[])
    lengths = dict(made.info.files)
    assert lengths["sub/config-link.json"] == lengths["config.json"]


@pytest.mark.parametrize("kind", ["folder", "dangling", "loop", "fifo"])
def test_other_links_and_special_files_are_refused(tmp_path: Path, kind: str) -> None:
    top = folder(tmp_path)
    odd = top / "odd"
    if kind == "folder":
        os.symlink("weights", odd)
    elif kind == "dangling":
        os.symlink("missing", odd)
    elif kind == "loop":
        os.symlink("odd", odd)
    else:
        os.mkfifo(odd)
    with pytest.raises(ClientError) as e:
        selected(top)
    assert str(e.value).startswith("odd in ")
    assert selected(top, ["odd"])  # --exclude lets it be


def test_a_folder_of_litter_only_has_nothing_to_share(tmp_path: Path) -> None:
    (tmp_path / "m" / ".git").mkdir(parents=True)
    (tmp_path / "m" / ".git" / "HEAD").write_text("ref")
    with pytest.raises(ClientError, match="at least one non-empty file"):
        create_torrent(tmp_path / "m", trackers=[])
