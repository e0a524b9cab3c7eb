"""Hybrid torrents (weightless.torrent.metainfo): the v1 file list and the v2 file tree must
describe the same files in the same order with the same lengths and offsets, as libtorrent
requires. Torrents made by libtorrent are mutated, and each mutation is refused here exactly
when libtorrent's torrent_info refuses it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weightless.torrent.metainfo import TorrentError, parse_torrent

PIECE = 16384
Info = dict[bytes, Any]


@pytest.fixture(scope="module")
def hybrids(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Hybrids made by libtorrent: files not aligned to pieces (so pad files sit between
    them), an empty file, a nested one, an aligned one last, and a single file."""
    root = tmp_path_factory.mktemp("hybrids")
    layouts = {
        "mixed": {"a.bin": 5000, "b.bin": 20000, "e.bin": 0, "sub/c.bin": 100, "z.bin": 32768},
        "unaligned last": {"a.bin": 5000, "b.bin": 0, "c.bin": 20000},
        "aligned": {"a.bin": PIECE, "b.bin": 2 * PIECE},
        "empty last": {"a.bin": 5000, "c.bin": 20000, "z": 0},
    }
    made = {}
    for name, files in layouts.items():
        for rel, size in files.items():
            (root / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / name / rel).write_bytes(b"x" * size)
        made[name] = _make(root, name)
    (root / "one.bin").write_bytes(b"y" * 5000)
    made["single"] = _make(root, "one.bin")
    top = lt.bdecode(made["single"])  # the same single file, listed under "files"
    top[b"info"][b"files"] = [{b"length": top[b"info"].pop(b"length"), b"path": [b"one.bin"]}]
    made["single as a list"] = bytes(lt.bencode(top))
    return made


def _make(root: Path, rel: str) -> bytes:
    ct = lt.create_torrent(lt.list_files(str(root / rel)), PIECE, 0)
    lt.set_piece_hashes(ct, str(root))
    return bytes(lt.bencode(ct.generate()))


def mutated(data: bytes, change: Callable[[Info], None]) -> bytes:
    top = copy.deepcopy(lt.bdecode(data))
    change(top[b"info"])
    return bytes(lt.bencode(top))


def libtorrent_accepts(data: bytes) -> bool:
    try:
        lt.torrent_info(data)
    except RuntimeError:
        return False
    return True


def we_accept(data: bytes) -> bool:
    try:
        parse_torrent(data)
    except TorrentError:
        return False
    return True


def _pads(info: Info) -> list[int]:
    return [i for i, f in enumerate(info[b"files"]) if b"p" in f.get(b"attr", b"")]


def _real(info: Info) -> list[int]:
    return [i for i, f in enumerate(info[b"files"]) if b"p" not in f.get(b"attr", b"")]


def swap_first_two_files(info: Info) -> None:
    files, (i, j) = info[b"files"], _real(info)[:2]
    files[i], files[j] = files[j], files[i]


def swap_keeping_pads(info: Info) -> None:
    files, real = info[b"files"], [i for i in _real(info) if info[b"files"][i][b"length"]]
    i, j = real[0], real[1]
    files[i][b"path"], files[j][b"path"] = files[j][b"path"], files[i][b"path"]


def grow_a_file(info: Info) -> None:
    info[b"files"][0][b"length"] += 1


def shrink_a_file(info: Info) -> None:
    info[b"files"][0][b"length"] -= 1


def drop_the_last_file(info: Info) -> None:
    del info[b"files"][_real(info)[-1] :]


def drop_the_first_file(info: Info) -> None:
    del info[b"files"][0:2]


def add_a_file(info: Info) -> None:
    info[b"files"].append({b"length": 10, b"path": [b"extra.bin"]})


def add_an_empty_file(info: Info) -> None:
    info[b"files"].append({b"length": 0, b"path": [b"extra"]})


def drop_the_pads(info: Info) -> None:
    info[b"files"] = [f for f in info[b"files"] if b"p" not in f.get(b"attr", b"")]


def move_a_pad_before_its_file(info: Info) -> None:
    files, i = info[b"files"], _pads(info)[0]
    files[i - 1], files[i] = files[i], files[i - 1]


def grow_a_pad(info: Info) -> None:
    info[b"files"][_pads(info)[0]][b"length"] += 1


def split_a_pad(info: Info) -> None:
    files, i = info[b"files"], _pads(info)[0]
    files[i][b"length"] -= 1
    files.insert(i + 1, {b"attr": b"p", b"length": 1, b"path": [b".pad", b"1"]})


def pad_the_end(info: Info) -> None:
    info[b"files"].append({b"attr": b"p", b"length": 100, b"path": [b".pad", b"100"]})


def rename_a_file(info: Info) -> None:
    info[b"files"][0][b"path"] = [b"renamed.bin"]


def rename_it_in_path_utf8(info: Info) -> None:
    info[b"files"][0][b"path.utf-8"] = [b"renamed.bin"]


def mark_a_file_as_pad(info: Info) -> None:
    info[b"files"][0][b"attr"] = b"p"


def rename_the_single_file(info: Info) -> None:
    info[b"name"] = b"other.bin"


def resize_the_tail_pad(info: Info) -> None:
    info[b"files"][_pads(info)[-1]][b"length"] = 100


def split_the_tail_pad(info: Info) -> None:
    i = _pads(info)[-1]
    size = info[b"files"][i][b"length"]
    info[b"files"][i:] = [
        {b"attr": b"p", b"length": size - 1, b"path": [b".pad", b"a"]},
        {b"attr": b"p", b"length": 1, b"path": [b".pad", b"b"]},
    ]


def empty_file_after_the_tail_pad(info: Info) -> None:
    info[b"files"].append({b"length": 0, b"path": [b"zz"]})


# (layout, mutation): libtorrent refuses every one of these
REFUSED = [
    ("mixed", swap_first_two_files),
    ("mixed", swap_keeping_pads),
    ("mixed", grow_a_file),
    ("mixed", shrink_a_file),
    ("mixed", drop_the_last_file),
    ("mixed", drop_the_first_file),
    ("mixed", add_a_file),
    ("mixed", add_an_empty_file),
    ("mixed", drop_the_pads),
    ("mixed", move_a_pad_before_its_file),
    ("mixed", grow_a_pad),
    ("mixed", split_a_pad),
    ("mixed", pad_the_end),
    ("mixed", rename_a_file),
    ("mixed", rename_it_in_path_utf8),
    ("mixed", mark_a_file_as_pad),
    ("unaligned last", drop_the_pads),
    ("unaligned last", swap_keeping_pads),
    ("aligned", swap_first_two_files),
    ("aligned", pad_the_end),
    ("single", rename_the_single_file),
    ("unaligned last", resize_the_tail_pad),
    ("unaligned last", split_the_tail_pad),
    ("unaligned last", empty_file_after_the_tail_pad),
    ("empty last", swap_first_two_files),
    ("single as a list", add_a_file),
]


@pytest.mark.parametrize(
    ("layout", "change"), REFUSED, ids=[f"{lay}: {c.__name__}" for lay, c in REFUSED]
)
def test_what_libtorrent_refuses_is_refused(
    hybrids: dict[str, bytes], layout: str, change: Callable[[Info], None]
) -> None:
    data = mutated(hybrids[layout], change)
    assert not libtorrent_accepts(data)
    with pytest.raises(TorrentError, match=r"v1 file list and the v2 file tree|pieces"):
        parse_torrent(data)


def rename_a_pad(info: Info) -> None:
    info[b"files"][_pads(info)[0]][b"path"] = [b".pad", b"other"]


def rename_the_empty_file(info: Info) -> None:
    for f in info[b"files"]:
        if f[b"length"] == 0:
            f[b"path"] = [b"renamed"]


def swap_the_empty_file_and_a_pad(info: Info) -> None:
    files = info[b"files"]
    i = next(i for i, f in enumerate(files) if f[b"length"] == 0)
    files[i - 1], files[i] = files[i], files[i - 1]


def drop_the_tail_pad(info: Info) -> None:
    """As libtorrent wrote hybrids before it padded the last file."""
    del info[b"files"][_pads(info)[-1]]


def pad_the_single_file(info: Info) -> None:
    size = PIECE - info[b"files"][0][b"length"] % PIECE
    info[b"files"].append({b"attr": b"p", b"length": size, b"path": [b".pad", b"%d" % size]})


def set_mtime_and_attributes(info: Info) -> None:
    info[b"files"][0][b"mtime"] = 5
    info[b"files"][0][b"attr"] = b"x"


ACCEPTED = [
    ("mixed", rename_a_pad),
    ("mixed", set_mtime_and_attributes),
    ("unaligned last", rename_the_empty_file),
    ("unaligned last", swap_the_empty_file_and_a_pad),
    ("unaligned last", drop_the_tail_pad),
    ("empty last", drop_the_tail_pad),
    ("single as a list", pad_the_single_file),
]


@pytest.mark.parametrize(
    ("layout", "change"), ACCEPTED, ids=[f"{lay}: {c.__name__}" for lay, c in ACCEPTED]
)
def test_what_libtorrent_accepts_is_accepted(
    hybrids: dict[str, bytes], layout: str, change: Callable[[Info], None]
) -> None:
    data = mutated(hybrids[layout], change)
    assert libtorrent_accepts(data)
    info = parse_torrent(data)
    assert info.v1_info_hash == lt.torrent_info(data).info_hashes().v1.to_bytes()
    # the files as libtorrent names them: from the v2 file tree, whatever the v1 list calls
    # the empty files it may name differently
    assert info.files == libtorrent_files(data)


def libtorrent_files(data: bytes) -> list[tuple[str, int]]:
    """The files libtorrent shows (pad files left out), relative to the torrent's name."""
    ti = lt.torrent_info(data)
    fs = ti.layout()
    return [
        (fs.file_path(i).removeprefix(ti.name() + "/"), fs.file_size(i))
        for i in range(fs.num_files())
        if not fs.file_flags(i) & fs.flag_pad_file
    ]


def test_the_unmutated_hybrids_are_accepted(hybrids: dict[str, bytes]) -> None:
    for data in hybrids.values():
        assert libtorrent_accepts(data) and we_accept(data)


def test_the_reason_names_the_file(hybrids: dict[str, bytes]) -> None:
    with pytest.raises(TorrentError, match=r"file 0 is 'b.bin' \(20000 bytes at 0\)"):
        parse_torrent(mutated(hybrids["mixed"], swap_first_two_files))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_file_list_mutations_agree_with_libtorrent(
    hybrids: dict[str, bytes], data: st.DataObject
) -> None:
    """Random edits of a hybrid's v1 file list (reorder, drop, repeat, resize, toggle pad
    attributes, add pads or empty files): accepted here exactly when libtorrent accepts."""
    layout = data.draw(
        st.sampled_from(["mixed", "unaligned last", "aligned", "empty last", "single as a list"])
    )

    def change(info: Info) -> None:
        files = info[b"files"]
        for _ in range(data.draw(st.integers(1, 3))):
            op = data.draw(
                st.sampled_from(["swap", "drop", "repeat", "resize", "pad", "insert", "empty"])
            )
            i = data.draw(st.integers(0, len(files) - 1))
            j = data.draw(st.integers(0, len(files) - 1))
            if op == "swap":
                files[i], files[j] = files[j], files[i]
            elif op == "drop" and len(files) > 1:
                del files[i]
            elif op == "repeat":
                files.insert(j, copy.deepcopy(files[i]))
            elif op == "resize":
                files[i][b"length"] = max(0, files[i][b"length"] + data.draw(st.integers(-2, 2)))
            elif op == "empty":
                files.insert(i, {b"length": 0, b"path": [b"e%d" % i]})
            elif op == "pad":
                attr = files[i].get(b"attr", b"")
                files[i][b"attr"] = attr.replace(b"p", b"") if b"p" in attr else attr + b"p"
            else:
                size = data.draw(st.sampled_from([0, 1, 100, PIECE - 100]))
                files.insert(i, {b"attr": b"p", b"length": size, b"path": [b".pad", b"%d" % size]})

    mutation = mutated(hybrids[layout], change)
    assert we_accept(mutation) == libtorrent_accepts(mutation)
    if we_accept(mutation):
        assert parse_torrent(mutation).files == libtorrent_files(mutation)
