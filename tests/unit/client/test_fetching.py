"""`weightless.client.fetching` without peers: a torrent's files as ``get`` selects them, data
complete in the cache returned at once (no session, no registry), offline refusals, and files
linked from the cache by their v2 pieces root."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest

from weightless.client import fetching
from weightless.client.cache import Cache
from weightless.client.errors import ClientError
from weightless.client.torrents import read_torrent


def make(folder: Path, piece: int = 16384) -> bytes:
    ct = lt.create_torrent(lt.list_files(str(folder)), piece)
    lt.set_piece_hashes(ct, str(folder.parent))
    return bytes(lt.bencode(ct.generate()))


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "src" / "tiny"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_bytes(b'{"a": 1}')
    (folder / "sub" / "w.bin").write_bytes(os.urandom(40_000))
    (folder / "empty").write_bytes(b"")
    return folder


def test_layout_lists_paths_as_meta_does(model: Path) -> None:
    layout = fetching.Layout.of(lt.torrent_info(make(model)))
    assert layout.name == "tiny" and not layout.single
    assert sorted(layout.paths) == ["config.json", "empty", "sub/w.bin"]
    roots = {p: r for _, p, _, r in layout.files}
    assert roots["empty"] is None and roots["sub/w.bin"] and len(roots["sub/w.bin"]) == 64
    prios = layout.priorities(["sub/w.bin"])
    assert len(prios) == layout.count > 3  # pad files are in libtorrent's list
    wanted = [i for i, p in enumerate(prios) if p]
    assert [p for i, p, _, _ in layout.files if i in wanted] == ["sub/w.bin"]


def test_a_single_file_is_its_name(model: Path) -> None:
    layout = fetching.Layout.of(lt.torrent_info(make(model / "sub" / "w.bin")))
    assert layout.single and layout.paths == ["w.bin"]


def test_a_torrent_with_a_symbolic_link_is_refused(model: Path) -> None:
    """BEP 47 symlinks: a link written by one torrent could carry another's files elsewhere."""
    ct = lt.create_torrent(lt.list_files(str(model)), 16384, lt.create_torrent.v2_only)
    lt.set_piece_hashes(ct, str(model.parent))
    torrent = ct.generate()
    torrent[b"info"][b"file tree"][b"passwd"] = {
        b"": {b"attr": b"l", b"length": 0, b"symlink path": [b"..", b"..", b"etc", b"passwd"]}
    }
    with pytest.raises(ClientError, match="passwd is a symbolic link"):
        fetching.Layout.of(lt.torrent_info(lt.bencode(torrent)))


class NoSession:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("a peer session was started")


def cached(tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Cache, str]:
    """The model's torrent in a cache whose record says its data is complete."""
    monkeypatch.setattr(fetching, "Transfer", NoSession)
    cache = Cache(tmp_path / "cache")
    made = read_torrent(make(model), "t")
    key = made.registry_hash
    cache.remember_torrent(key, made.v1_info_hash, made.data)
    save = cache.data_folder(key)
    save.mkdir(parents=True)
    os.system(f"cp -r '{model}' '{save}/'")
    layout = fetching.Layout.of(lt.torrent_info(made.data))
    progress = [0] * layout.count
    for i, _, n, _ in layout.files:
        progress[i] = n
    fetching._record(cache, key, save.resolve(), layout, save.resolve() / "tiny", progress)
    return cache, key


def test_complete_data_is_returned_without_peers_or_registry(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, key = cached(tmp_path, model, monkeypatch)
    where = "http://127.0.0.1:9"  # nothing listens there: asking would fail
    got = fetching.fetch(key, tracker=where, cache=cache)
    assert got.path == cache.data_folder(key).resolve() / "tiny"
    assert (got.downloaded, got.reused) == (0, 0)
    assert sorted(got.files) == ["config.json", "empty", "sub/w.bin"]
    assert got.bytes == 40_008
    got = fetching.fetch(key, include="*.json", tracker=where, cache=cache, offline=True)
    assert got.files == ("config.json",) and got.bytes == 8
    with pytest.raises(ClientError, match=r"no file of 'tiny' matches --include \*.pt"):
        fetching.fetch(key, include="*.pt", tracker=where, cache=cache)


def test_offline_refuses_what_is_not_complete(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, key = cached(tmp_path, model, monkeypatch)
    with pytest.raises(ClientError) as e:
        fetching.fetch("01" * 32, cache=cache, offline=True)
    assert (
        str(e.value) == f"{'01' * 32} is not in the cache {cache.root} (--offline fetches nothing)"
    )
    with pytest.raises(ClientError, match="is not in the cache"):
        fetching.fetch("some/name", cache=cache, offline=True)
    data = cache.data_folder(key) / "tiny" / "sub" / "w.bin"
    with open(data, "ab") as f:
        f.write(b"!")
    with pytest.raises(ClientError, match="not complete in the cache"):
        fetching.fetch(key, cache=cache, offline=True)
    # only the selected files need to be there
    assert fetching.fetch(key, files=["config.json"], cache=cache, offline=True).bytes == 8


def test_a_file_with_the_same_pieces_root_is_linked(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, key = cached(tmp_path, model, monkeypatch)
    other = tmp_path / "v2" / "tiny2"
    other.mkdir(parents=True)
    (other / "w.bin").write_bytes((model / "sub" / "w.bin").read_bytes())
    (other / "new.bin").write_bytes(b"new")
    layout = fetching.Layout.of(lt.torrent_info(make(other)))
    data = tmp_path / "out" / "tiny2"
    assert fetching._reuse(cache, layout, ["w.bin", "new.bin"], data) == 40_000
    source = cache.data_folder(key) / "tiny" / "sub" / "w.bin"
    assert (data / "w.bin").stat().st_ino == source.stat().st_ino
    assert not (data / "new.bin").exists()
    # not selected, not taken
    assert fetching._reuse(cache, layout, ["new.bin"], tmp_path / "out2" / "tiny2") == 0


def test_seed_starts_a_session_even_for_complete_data(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, key = cached(tmp_path, model, monkeypatch)
    with pytest.raises(AssertionError, match="a peer session was started"):
        fetching.fetch(key, cache=cache, seed=True, tracker="http://127.0.0.1:9")


def test_nothing_is_written_through_a_link_that_leads_outside(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, key = cached(tmp_path, model, monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "tiny").symlink_to(elsewhere)  # planted before the download
    with pytest.raises(ClientError, match="leads outside"):
        fetching.fetch(key, output=out, cache=cache, tracker="http://127.0.0.1:9")
    assert list(elsewhere.iterdir()) == []
