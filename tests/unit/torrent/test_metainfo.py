"""Tests for weightless.torrent.metainfo against torrents made by libtorrent and by hand."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import bencodepy
import libtorrent as lt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weightless.torrent.magnet import magnet_uri
from weightless.torrent.metainfo import (
    MAX_FILES,
    TorrentError,
    TorrentInfo,
    parse_torrent,
)

PIECE = 16384
FLAGS = {"hybrid": 0, "v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only}


def enc(obj: Any) -> bytes:
    """Bencode keeping dict keys in insertion order (bencodepy sorts them)."""
    if isinstance(obj, int):
        return b"i%de" % obj
    if isinstance(obj, str):
        obj = obj.encode()
    if isinstance(obj, bytes):
        return b"%d:%s" % (len(obj), obj)
    if isinstance(obj, list):
        return b"l" + b"".join(enc(x) for x in obj) + b"e"
    return b"d" + b"".join(enc(k) + enc(v) for k, v in obj.items()) + b"e"


def make(root: Path, rel: str, version: str, piece: int = PIECE) -> bytes:
    """A torrent of root/rel, made by libtorrent."""
    ct = lt.create_torrent(lt.list_files(str(root / rel)), piece, FLAGS[version])
    lt.set_piece_hashes(ct, str(root))
    return bytes(lt.bencode(ct.generate()))


@pytest.fixture(scope="module")
def content(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("content")
    (root / "single.bin").write_bytes(bytes(range(256)) * 12)  # 3 KiB
    multi = root / "multi"
    (multi / "sub" / "deeper").mkdir(parents=True)
    (multi / "a.bin").write_bytes(b"a" * 5000)
    (multi / "empty").write_bytes(b"")
    (multi / "sub" / "b.bin").write_bytes(b"b" * 40000)
    (multi / "sub" / "deeper" / "c.txt").write_bytes(b"c" * 100)
    (root / "lonely" / "inner").mkdir(parents=True)
    (root / "lonely" / "inner" / "x.bin").write_bytes(b"x" * 3000)
    (root / "dir1").mkdir()
    (root / "dir1" / "only.bin").write_bytes(b"o" * 20000)
    return root


def lt_view(data: bytes) -> tuple[lt.torrent_info, list[tuple[str, int]], int]:
    """libtorrent's reading: its torrent_info, non-pad files relative to the name, their size."""
    ti = lt.torrent_info(data)
    fs = ti.layout()
    files = [
        (fs.file_path(i).removeprefix(ti.name() + "/"), fs.file_size(i))
        for i in range(fs.num_files())
        if not fs.file_flags(i) & fs.flag_pad_file
    ]
    return ti, files, sum(size for _, size in files)


@pytest.mark.parametrize("version", ["hybrid", "v1", "v2"])
@pytest.mark.parametrize("rel", ["single.bin", "multi", "lonely", "dir1"])
def test_matches_libtorrent(content: Path, rel: str, version: str) -> None:
    data = make(content, rel, version)
    ti, files, size = lt_view(data)
    ih = ti.info_hashes()
    info = parse_torrent(data)

    assert (info.v1_info_hash is not None) == ih.has_v1() == (version != "v2")
    assert (info.v2_info_hash is not None) == ih.has_v2() == (version != "v1")
    if ih.has_v1():
        assert info.v1_info_hash == ih.v1.to_bytes()
        assert info.v1_info_hash_hex == str(ih.v1)
    if ih.has_v2():
        assert info.v2_info_hash == ih.v2.to_bytes()
        assert info.info_hash_hex == str(ih.v2)
    else:
        assert info.info_hash_hex == str(ih.v1)
    assert info.name == rel
    assert info.piece_length == ti.piece_length() == PIECE
    assert info.piece_count == ti.num_pieces()
    assert info.total_size == size
    assert info.files == files
    assert info.meta() == {
        "name": rel,
        "piece_length": PIECE,
        "piece_count": ti.num_pieces(),
        "total_size": size,
        "files": [{"path": p, "length": n} for p, n in files],
        "signed": False,
        "public_keys": [],
    }


def test_hybrid_multi_file_pads_are_left_out(content: Path) -> None:
    data = make(content, "multi", "hybrid")
    listed = bencodepy.decode(data)[b"info"][b"files"]
    assert any(b"p" in f.get(b"attr", b"") for f in listed)  # libtorrent did pad it
    info = parse_torrent(data)
    assert info.meta()["files"] == [
        {"path": "a.bin", "length": 5000},
        {"path": "empty", "length": 0},
        {"path": "sub/b.bin", "length": 40000},
        {"path": "sub/deeper/c.txt", "length": 100},
    ]
    assert info.total_size == 45100
    assert info.piece_count == len(bencodepy.decode(data)[b"info"][b"pieces"]) // 20


def test_v2_only_piece_count_is_per_file(content: Path) -> None:
    info = parse_torrent(make(content, "multi", "v2"))
    # 5000 -> 1, 0 -> 0, 40000 -> 3, 100 -> 1
    assert info.piece_count == 5
    assert parse_torrent(make(content, "multi", "v2", piece=32768)).piece_count == 4


def test_single_file_path_is_the_name(content: Path) -> None:
    for version in FLAGS:
        meta = parse_torrent(make(content, "single.bin", version)).meta()
        assert meta["files"] == [{"path": "single.bin", "length": 3072}]
        assert meta["total_size"] == 3072


def test_v2_directory_with_one_file(content: Path) -> None:
    """libtorrent reads a v2-only torrent of a directory holding one file as a single-file torrent
    named after the file; we keep the info name and list the file under its own name."""
    data = make(content, "dir1", "v2")
    info = parse_torrent(data)
    assert (info.name, info.files) == ("dir1", [("only.bin", 20000)])
    assert lt.torrent_info(data).name() == "only.bin"
    hybrid = parse_torrent(make(content, "dir1", "hybrid"))
    assert (hybrid.name, hybrid.files) == ("dir1", [("only.bin", 20000)])


def test_unsorted_info_keys_hash_the_original_bytes(content: Path) -> None:
    for version in FLAGS:
        top = bencodepy.decode(make(content, "multi", version))
        raw_info = enc(dict(reversed(list(top[b"info"].items()))))
        assert raw_info != bencodepy.encode(top[b"info"])
        data = b"d4:info" + raw_info + b"e"
        info = parse_torrent(data)
        if version != "v2":
            assert info.v1_info_hash == hashlib.sha1(raw_info).digest()
        if version != "v1":
            assert info.v2_info_hash == hashlib.sha256(raw_info).digest()
        if version == "v1":
            assert lt.torrent_info(data).info_hashes().v1.to_bytes() == info.v1_info_hash
        else:  # libtorrent insists on sorted keys once an info dict is v2
            with pytest.raises(RuntimeError, match="invalid bencoding"):
                lt.torrent_info(data)


def test_name_utf8_is_preferred() -> None:
    info = {
        b"length": 1,
        b"name": b"caf\xe9",  # latin-1, not UTF-8
        b"name.utf-8": "café".encode(),
        b"piece length": PIECE,
        b"pieces": b"x" * 20,
    }
    assert parse_torrent(enc({b"info": info})).name == "café"
    del info[b"name.utf-8"]
    with pytest.raises(TorrentError, match="UTF-8"):
        parse_torrent(enc({b"info": info}))


def v1_single(**changes: Any) -> dict[bytes, Any]:
    info: dict[bytes, Any] = {
        b"length": 3,
        b"name": b"f",
        b"piece length": PIECE,
        b"pieces": b"x" * 20,
    }
    for key, value in changes.items():
        key_bytes = key.replace("_", " ").encode()
        if value is None:
            info.pop(key_bytes, None)
        else:
            info[key_bytes] = value
    return {b"info": info}


def v1_multi(*paths: list[bytes]) -> dict[bytes, Any]:
    files = [{b"length": 1, b"path": p} for p in paths]
    n = len(paths)
    return v1_single(length=None, files=files, pieces=b"x" * 20 * (-(-n // PIECE)))


def v2_tree(tree: Any, piece: int = PIECE) -> dict[bytes, Any]:
    info = {b"file tree": tree, b"meta version": 2, b"name": b"t", b"piece length": piece}
    return {b"info": info}


def leaf(length: int = 1) -> dict[bytes, Any]:
    return {b"": {b"length": length, b"pieces root": b"r" * 32}}


def deep_tree(depth: int) -> dict[bytes, Any]:
    tree: dict[bytes, Any] = {b"f": leaf()}
    for _ in range(depth):
        tree = {b"d": tree}
    return tree


GOOD = enc(v1_single())
BAD: list[tuple[str, bytes, str]] = [
    ("empty", b"", "dictionary"),
    ("not bencode", b"hello", "dictionary"),
    ("list top level", b"le", "dictionary"),
    ("truncated", GOOD[:-5], "truncated"),
    ("truncated string", GOOD[: GOOD.index(b"pieces") + 12], "truncated"),
    ("trailing data", GOOD + b"x", "trailing"),
    ("missing info", enc({b"announce": b"x"}), "info"),
    ("info not a dict", enc({b"info": b"x"}), "info"),
    ("leading zero int", GOOD.replace(b"i3e", b"i03e"), "integer"),
    ("negative zero", GOOD.replace(b"i3e", b"i-0e"), "integer"),
    ("huge int", GOOD.replace(b"i3e", b"i" + b"9" * 30 + b"e"), "integer"),
    ("leading zero length", GOOD.replace(b"4:info", b"04:info"), "length"),
    ("duplicate key", b"d4:infod1:ai1e1:ai2eee", "duplicate"),
    ("list key", b"dli1ee1:ae", "key"),
    ("deep nesting", b"d4:info" + b"l" * 500 + b"e" * 500 + b"e", "nested"),
    ("zero piece length", enc(v1_single(piece_length=0)), "piece length"),
    ("negative piece length", enc(v1_single(piece_length=-16384)), "piece length"),
    ("string piece length", enc(v1_single(piece_length=b"16384")), "piece length"),
    ("pieces not multiple of 20", enc(v1_single(pieces=b"x" * 19)), "multiple of 20"),
    ("pieces too many", enc(v1_single(pieces=b"x" * 40)), "does not match"),
    ("pieces wrong type", enc(v1_single(pieces=1)), "pieces"),
    ("no pieces", enc(v1_single(pieces=None)), "neither"),
    ("negative length", enc(v1_single(length=-1)), "length"),
    ("string length", enc(v1_single(length=b"3")), "length"),
    ("no length", enc(v1_single(length=None)), "length"),
    ("missing name", enc(v1_single(name=None)), "name"),
    ("empty name", enc(v1_single(name=b"")), "name"),
    ("dotdot name", enc(v1_single(name=b"..")), "safe"),
    ("slash name", enc(v1_single(name=b"a/b")), "safe"),
    ("list name", enc(v1_single(name=[b"a"])), "name"),
    ("length and files", enc(v1_single(files=[{b"length": 1, b"path": [b"a"]}])), "both"),
    ("empty files", enc(v1_single(length=None, files=[])), "files"),
    ("dotdot path", enc(v1_multi([b"..", b"etc"])), "safe"),
    ("dot path", enc(v1_multi([b"."])), "safe"),
    ("slash in path", enc(v1_multi([b"a/../../b"])), "safe"),
    ("nul in path", enc(v1_multi([b"a\x00b"])), "safe"),
    ("newline in path", enc(v1_multi([b"a\nb"])), "safe"),
    ("backslash in path", enc(v1_multi([b"..\\..\\x"])), "safe"),
    (
        "v1 files without pieces",
        enc({b"info": {**v2_tree({b"f": leaf()})[b"info"], b"length": 1}}),
        "pieces",
    ),
    ("empty component", enc(v1_multi([b"a", b""])), "safe"),
    ("empty path", enc(v1_multi([])), "path"),
    ("path not a list", enc(v1_single(length=None, files=[{b"length": 1, b"path": b"a"}])), "path"),
    ("file not a dict", enc(v1_single(length=None, files=[b"a"])), "dictionary"),
    ("path too deep", enc(v1_multi([b"d"] * 65)), "path"),
    (
        "attr not a string",
        enc(v1_single(length=None, files=[{b"length": 1, b"path": [b"a"], b"attr": 1}])),
        "attr",
    ),
    ("meta version 3", enc(v1_single(meta_version=3)), "meta version"),
    ("file tree without v2", enc(v1_single(file_tree=leaf())), "file tree"),
    ("v2 without file tree", enc(v1_single(meta_version=2)), "file tree"),
    ("v2 small pieces", enc(v2_tree({b"f": leaf()}, piece=8192)), "power of two"),
    ("v2 odd pieces", enc(v2_tree({b"f": leaf()}, piece=3 * PIECE)), "power of two"),
    ("v2 empty tree", enc(v2_tree({})), "non-empty"),
    ("v2 tree not a dict", enc(v2_tree([])), "non-empty"),
    ("v2 dotdot", enc(v2_tree({b"..": {b"etc": leaf()}})), "safe"),
    ("v2 slash", enc(v2_tree({b"a/b": leaf()})), "safe"),
    ("v2 leaf and dir", enc(v2_tree({b"a": {**leaf(), b"b": leaf()}})), "both"),
    ("v2 no pieces root", enc(v2_tree({b"a": {b"": {b"length": 5}}})), "pieces root"),
    (
        "v2 short pieces root",
        enc(v2_tree({b"a": {b"": {b"length": 5, b"pieces root": b"r"}}})),
        "pieces root",
    ),
    ("v2 bad length", enc(v2_tree({b"a": {b"": {b"length": -5}}})), "length"),
    ("v2 deep tree", enc(v2_tree(deep_tree(100))), "deeper"),
    ("v2 only padding", enc(v2_tree({b"p": {b"": {b"length": 7, b"attr": b"p"}}})), "padding"),
    ("key without value", b"d4:infoe", "end marker"),
    ("int key", b"di1ei2ee", "key"),
    ("stray end", b"d4:infod4:name1:fee" + b"e", "trailing"),
]


@pytest.mark.parametrize(
    ("data", "reason"), [(d, r) for _, d, r in BAD], ids=[n for n, _, _ in BAD]
)
def test_malformed_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(TorrentError, match=reason):
        parse_torrent(data)


def test_tree_depth_limit_is_inclusive() -> None:
    parse_torrent(enc(v2_tree(deep_tree(63))))  # a 64-component path is fine
    with pytest.raises(TorrentError, match="deeper"):
        parse_torrent(enc(v2_tree(deep_tree(64))))


def test_too_many_files() -> None:
    tree = {str(i).encode(): {b"": {b"length": 0}} for i in range(MAX_FILES + 1)}
    with pytest.raises(TorrentError, match="files"):
        parse_torrent(enc(v2_tree(tree)))


def test_hybrid_v1_and_v2_must_agree(content: Path) -> None:
    top = bencodepy.decode(make(content, "multi", "hybrid"))
    top[b"info"][b"file tree"][b"a.bin"][b""][b"length"] = 5001
    with pytest.raises(TorrentError, match="different files"):
        parse_torrent(bencodepy.encode(top))


def test_pad_attr_on_v2_leaf_and_bytearray_input() -> None:
    tree = {b"a": leaf(5), b"p": {b"": {b"length": 7, b"attr": b"p"}}}
    info = parse_torrent(bytearray(enc(v2_tree(tree))))
    assert info.files == [("a", 5)]
    assert info.v1_info_hash is None and info.v2_info_hash is not None
    assert len(info.v2_info_hash) == 32


def test_not_bytes_is_refused() -> None:
    with pytest.raises(TorrentError):
        parse_torrent("d4:infodee")  # type: ignore[arg-type]


def check(data: bytes) -> None:
    try:
        info = parse_torrent(data)
    except TorrentError as exc:
        assert str(exc)
        return
    assert isinstance(info, TorrentInfo)
    assert info.v1_info_hash is not None or info.v2_info_hash is not None
    assert info.meta()["total_size"] == sum(n for _, n in info.files)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    check(data)
    check(b"d4:info" + data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_torrents(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(SEEDS))
    pos = data.draw(st.integers(0, len(seed)))
    op = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
    if op == "flip" and pos < len(seed):
        byte = data.draw(st.integers(0, 255))
        seed = seed[:pos] + bytes([byte]) + seed[pos + 1 :]
    elif op == "cut":
        seed = seed[:pos]
    elif op == "insert":
        seed = seed[:pos] + data.draw(st.binary(max_size=8)) + seed[pos:]
    else:
        seed = seed[:pos] + seed[pos + data.draw(st.integers(1, 8)) :]
    check(seed)


bvalues = st.recursive(
    st.integers(-(2**70), 2**70) | st.binary(max_size=40) | st.sampled_from([b"", b"p", b".."]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.binary(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_replaced_values(data: st.DataObject) -> None:
    """Swap one value anywhere in a valid torrent for an arbitrary bencode value."""
    top = bencodepy.decode(data.draw(st.sampled_from(SEEDS)))
    node: Any = top
    while isinstance(node, (dict, list)) and node and data.draw(st.booleans()):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = data.draw(st.sampled_from(keys))
        if not isinstance(node[key], (dict, list)) or data.draw(st.booleans()):
            node[key] = data.draw(bvalues)
            break
        node = node[key]
    check(enc(top))


def _seeds() -> list[bytes]:
    info = {b"a": leaf(5), b"d": {b"b": leaf(0), b"c": leaf(PIECE * 2)}}
    return [
        GOOD,
        enc(v1_multi([b"a"], [b"b", b"c"])),
        enc(v2_tree(info)),
        enc({**v2_tree(info), b"piece layers": {b"r" * 32: b"h" * 64}}),
    ]


SEEDS = _seeds()


def test_seeds_are_valid() -> None:
    for seed in SEEDS:
        parse_torrent(seed)


def test_magnet_uri_round_trips_through_libtorrent(content: Path) -> None:
    info = parse_torrent(make(content, "multi", "hybrid"))
    uri = magnet_uri("my model", info.info_hash_hex, info.v1_info_hash_hex, ["http://t/announce"])
    params = lt.parse_magnet_uri(uri)
    assert params.name == "my model"
    assert params.trackers == ["http://t/announce"]
    assert params.info_hashes.v1.to_bytes() == info.v1_info_hash
    assert params.info_hashes.v2.to_bytes() == info.v2_info_hash


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_agrees_with_libtorrent(content: Path, data: st.DataObject) -> None:
    """Mutate real torrents; whenever both parsers accept, they must agree."""
    rel = data.draw(st.sampled_from(["single.bin", "multi"]))
    seed = make(content, rel, data.draw(st.sampled_from(list(FLAGS))))
    pos = data.draw(st.integers(0, len(seed) - 1))
    mutated = seed[:pos] + data.draw(st.binary(min_size=1, max_size=3)) + seed[pos + 1 :]
    try:
        ours = parse_torrent(mutated)
        ti, files, size = lt_view(mutated)
    except (TorrentError, RuntimeError):
        return
    ih = ti.info_hashes()
    assert ours.v1_info_hash == (ih.v1.to_bytes() if ih.has_v1() else None)
    assert ours.v2_info_hash == (ih.v2.to_bytes() if ih.has_v2() else None)
    assert (ours.files, ours.total_size, ours.piece_count) == (files, size, ti.num_pieces())


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_files_that_add_up_past_int64_are_refused(version: str) -> None:
    """Each length may be as large as a client holds (2^63-1), but not their sum: a torrent
    whose total no client or database column can hold is a TorrentError, not an overflow."""
    big = 2**63 - 1
    if version == "v1":
        info: dict[bytes, Any] = {
            b"files": [{b"length": big, b"path": [b"a"]}, {b"length": big, b"path": [b"b"]}],
            b"name": b"big",
            b"piece length": big,
            b"pieces": bytes(40),
        }
    else:
        leaf = {b"": {b"length": big, b"pieces root": bytes(32)}}
        info = {
            b"file tree": {b"a": leaf, b"b": leaf},
            b"meta version": 2,
            b"name": b"big",
            b"piece length": 16384,
        }
    with pytest.raises(TorrentError, match="add up to more than"):
        parse_torrent(bencodepy.encode({b"info": info}))


def test_pad_files_count_toward_the_total() -> None:
    """A pad file is bytes of the torrent too: a v1 list whose data fits in 2^63-1 but whose
    pads push it past is refused, whatever its pieces say."""
    piece = 2**62
    info = {
        b"files": [
            {b"length": 2**63 - 2**62 - 1, b"path": [b"a"]},
            {b"attr": b"p", b"length": 2**62, b"path": [b".pad", b"x"]},
            {b"length": 1, b"path": [b"b"]},
        ],
        b"name": b"big",
        b"piece length": piece,
        b"pieces": bytes(40),  # two pieces: 2^63 bytes with the pad
    }
    with pytest.raises(TorrentError, match="add up to more than"):
        parse_torrent(bencodepy.encode({b"info": info}))
    info[b"files"][2][b"length"] = 0  # 2^63-1 with the pad: still two pieces
    assert parse_torrent(bencodepy.encode({b"info": info})).total_size == 2**62 - 1
