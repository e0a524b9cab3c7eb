"""The cache directory: where it is, its layout, and the records of verified files that let
``get`` return data at once (believed only while sizes and modification times still match)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from weightless.client.cache import Cache, FileRecord, Record, cache_root, decode_record
from weightless.client.errors import ClientError

V2 = "ab" * 32
V1 = "cd" * 20
ROOT = "ef" * 32


def test_the_cache_is_wl_cache_else_xdg_else_home() -> None:
    assert cache_root({"WL_CACHE": "/c", "XDG_CACHE_HOME": "/x", "HOME": "/h"}) == Path("/c")
    assert cache_root({"XDG_CACHE_HOME": "/x", "HOME": "/h"}) == Path("/x/weightless")
    assert cache_root({"WL_CACHE": "", "HOME": "/h"}) == Path("/h/.cache/weightless")
    assert cache_root({"WL_CACHE": "~/c", "HOME": "/h"}) == Path("~/c").expanduser()


def test_layout_keeps_state_apart_from_the_data(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    assert cache.data_folder(V2) == tmp_path / "data" / V2
    assert cache.torrent_file(V2) == tmp_path / "state" / V2 / "torrent"
    out = Path("/somewhere/out")
    for path in (cache.resume_file(V2, out), cache.record_file(V2, out)):
        assert path.is_relative_to(tmp_path / "state" / V2)
    assert cache.resume_file(V2, out).parent == cache.record_file(V2, out).parent
    assert cache.spot(V2, out) != cache.spot(V2, Path("/somewhere/else"))
    assert cache.parts_folder(V2, out).is_relative_to(tmp_path / "state")


@pytest.mark.parametrize("bad", ["../../etc", V2.upper(), "ab" * 31, "", V2 + "/x", "zz" * 32])
def test_only_a_hash_names_a_folder(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ClientError, match="not an info hash"):
        Cache(tmp_path).data_folder(bad)


def written(tmp_path: Path, data: bytes = b"x" * 100) -> tuple[Cache, Path, Record]:
    cache = Cache(tmp_path / "cache")
    save = tmp_path / "out"
    (save / "model" / "sub").mkdir(parents=True)
    f = save / "model" / "sub" / "w.bin"
    f.write_bytes(data)
    st = f.stat()
    record = Record(
        V2,
        save / "model",
        False,
        {"sub/w.bin": FileRecord("sub/w.bin", len(data), st.st_mtime_ns, ROOT)},
    )
    cache.write_record(record, save)
    return cache, save, record


def test_a_record_is_read_back_and_believed_while_the_file_is_unchanged(tmp_path: Path) -> None:
    cache, save, record = written(tmp_path)
    found = cache.record(V2, save)
    assert found == record and found.intact("sub/w.bin")
    assert not found.intact("other.bin")
    assert cache.record(V2, tmp_path / "elsewhere") is None
    assert cache.record(V1, save) is None


def test_a_changed_file_is_not_believed(tmp_path: Path) -> None:
    cache, save, _ = written(tmp_path)
    f = save / "model" / "sub" / "w.bin"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # touched
    assert not cache.record(V2, save).intact("sub/w.bin")  # type: ignore[union-attr]
    f.write_bytes(b"x" * 99)  # another size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not cache.record(V2, save).intact("sub/w.bin")  # type: ignore[union-attr]
    f.unlink()
    assert not cache.record(V2, save).intact("sub/w.bin")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'{"version": 1}',
        b'{"version": 2, "key": "x", "data": "/", "single": false, "files": []}',
        b'{"version": 1, "key": "k", "data": "/", "single": false, "files": [{"path": 1}]}',
        b'{"version": 1, "key": "k", "data": "/", "single": false, "files": [{"path": "a",'
        b' "length": "1", "mtime_ns": 1, "root": null}]}',
    ],
)
def test_a_damaged_record_is_no_record(raw: bytes) -> None:
    assert decode_record(raw) is None


def test_a_file_is_found_by_pieces_root_and_length_while_intact(tmp_path: Path) -> None:
    cache, save, _ = written(tmp_path)
    place = save / "model" / "sub" / "w.bin"
    assert cache.intact_copy(ROOT, 100) == place
    assert cache.intact_copy(ROOT, 101) is None
    assert cache.intact_copy("00" * 32, 100) is None
    place.write_bytes(b"y" * 100)
    os.utime(place, ns=(0, 12345))
    assert cache.intact_copy(ROOT, 100) is None
    # a record under another hash's folder than its own key is not believed
    other = tmp_path / "cache" / "state" / ("01" * 32) / "x"
    other.mkdir(parents=True)
    cache.record_file(V2, save).rename(other / "record.json")
    assert list(cache.records()) == []


def test_a_v1_hash_of_a_hybrid_maps_to_its_v2_hash(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    assert cache.key_of(V1) == V1
    cache.remember_torrent(V2, V1, b"d4:infodee")
    assert cache.key_of(V1) == V2 and cache.key_of(V1.upper()) == V2
    assert cache.key_of(V2) == V2
    assert cache.stored_torrent(V2) == b"d4:infodee"
    assert cache.stored_torrent(V1) is None


def test_names_are_remembered_per_tracker(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    assert cache.resolved_name("http://a", "org/model") is None
    cache.remember_name("http://a", "org/model", V2)
    assert cache.resolved_name("http://a", "org/model") == V2
    assert cache.resolved_name("http://b", "org/model") is None
    assert cache.resolved_name("http://a", "org/model@2") is None


def _edited(cache: Cache, save: Path, **changes: object) -> None:
    """The record of ``written`` as a hand (or another program) edited it."""
    import json

    place = cache.record_file(V2, save)
    obj = json.loads(place.read_bytes())
    obj.update(changes)
    place.write_text(json.dumps(obj))


@pytest.mark.parametrize(
    "data",
    ["/etc", "{tmp}/elsewhere/model", "{tmp}/out/model/..", "{tmp}/out/..", "{tmp}/out"],
)
def test_a_record_naming_data_outside_its_save_path_is_no_record(tmp_path: Path, data: str) -> None:
    cache, save, _ = written(tmp_path)
    (tmp_path / "elsewhere" / "model" / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere" / "model" / "sub" / "w.bin").write_bytes(b"x" * 100)
    _edited(cache, save, data=data.format(tmp=tmp_path))
    assert cache.record(V2, save) is None
    assert list(cache.records()) == []


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "sub/../../x", "a//b", ""])
def test_a_record_naming_a_file_outside_its_data_is_no_record(tmp_path: Path, path: str) -> None:
    cache, save, _ = written(tmp_path)
    files = [{"path": path, "length": 1, "mtime_ns": 1, "root": ROOT}]
    _edited(cache, save, files=files)
    assert cache.record(V2, save) is None
    assert cache.intact_copy(ROOT, 1) is None
