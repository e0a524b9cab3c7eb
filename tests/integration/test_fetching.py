"""``weightless get`` as a model hub's users fetch: some files of an entry, from the cache at
once (also with the tracker down, and offline), a second version that costs only its changed
shard, and nothing from a registry that answers a hash with another entry. Against a real
``twistd weightless`` with real libtorrent seeders (``weightless seed``)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import libtorrent as lt
import pytest

from integration.client_kit import KEY, Client, start_tracker, tree
from integration.process import Tracker
from weightless.client.cache import Cache

pytestmark = pytest.mark.integration

TEST_TIMEOUT = 180.0  # seconds for one test: bounds a failure only
GET_TIMEOUT = "120"
MiB = 1024 * 1024


class Setup:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.trackers: list[Tracker] = []
        self.clients: list[Client] = []
        self.servers: list[ThreadingHTTPServer] = []

    def tracker(self) -> tuple[Tracker, Client]:
        tracker, udp_port = start_tracker(self.workdir, udp=False)
        self.trackers.append(tracker)
        client = Client(tracker, self.workdir, udp_port)
        self.clients.append(client)
        return tracker, client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for server in self.servers:
            server.shutdown()
            server.server_close()
        for tracker in self.trackers:
            tracker.kill()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    s = Setup(tmp_path)
    try:
        yield s
    finally:
        s.close()


def model_folder(root: Path, name: str = "tiny-llm", shards: list[bytes] | None = None) -> Path:
    """A model repository as a hub holds one: config, tokenizer, card, safetensors shards."""
    folder = root / name
    (folder / "docs").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"layers": 2, "hidden": 64}))
    (folder / "tokenizer.json").write_text(json.dumps({"vocab": ["a", "b"]}))
    (folder / "docs" / "README.md").write_text("# tiny-llm\n")
    for n, shard in enumerate(shards or [os.urandom(700_000), os.urandom(500_000)], start=1):
        (folder / f"model-{n:05d}.safetensors").write_bytes(shard)
    return folder


def publish_and_seed(client: Client, folder: Path, deadline: float, **fields: str) -> Any:
    extra = [a for k, v in fields.items() for a in (f"--{k}", v)]
    torrent = folder.parent / f"{folder.name}-{len(client.background)}.torrent"
    published = client.json(
        "publish",
        str(folder),
        "-o",
        str(torrent),
        "--api-key",
        KEY,
        "--piece-length",
        "16384",
        *extra,
    )
    seeder = client.start("seed", str(torrent), "--data", str(folder.parent))
    client.wait_seeding(seeder, deadline)
    return published


def fails(client: Client, *args: str, says: str) -> str:
    result = client.run(*args, ok=False)
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert says in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_only_the_selected_files_are_fetched_and_written(tmp_path: Path, setup: Setup) -> None:
    deadline = time.monotonic() + TEST_TIMEOUT
    _, client = setup.tracker()
    folder = model_folder(tmp_path / "publisher")
    published = publish_and_seed(client, folder, deadline)
    everything = tree(folder)

    cases: list[tuple[list[str], set[str]]] = [
        (["--include", "*.json"], {"config.json", "tokenizer.json"}),
        (["config.json"], {"config.json"}),
        (["--include", "*.md"], {"docs/README.md"}),  # * matches / too
        (
            ["--include", "*", "--exclude", "*.safetensors"],
            {"config.json", "tokenizer.json", "docs/README.md"},
        ),
        (
            ["model-00002.safetensors", "--include", "tok*"],
            {"model-00002.safetensors", "tokenizer.json"},
        ),
        (
            ["--exclude", "model-0000[12].*", "--exclude", "docs/*"],
            {"config.json", "tokenizer.json"},
        ),
    ]
    for n, (args, want) in enumerate(cases):
        out = tmp_path / f"out-{n}"
        got = client.json(
            "get", published["info_hash"], *args, "-o", str(out), "--timeout", GET_TIMEOUT
        )
        assert sorted(got["files"]) == sorted(want), args
        assert got["bytes"] == sum(len(everything[f]) for f in want)
        # only the pieces of the selected files were requested (pad files keep files apart)
        pieces = sum(-(-len(everything[f]) // 16384) * 16384 for f in want)
        assert got["downloaded"] + got["reused"] <= pieces, got
        # only those files are on disk, nothing else under the download folder
        assert tree(out) == {f"{folder.name}/{f}": everything[f] for f in want}, args
        assert Path(got["path"]) == out.resolve() / folder.name

    # a selection matching nothing: exit 1 naming the patterns, nothing written
    empty = tmp_path / "empty"
    fails(
        client,
        "get",
        folder.name,
        "--include",
        "*.gguf",
        "--exclude",
        "x",
        "-o",
        str(empty),
        says="no file of 'tiny-llm' matches --include *.gguf --exclude x",
    )
    fails(
        client,
        "get",
        folder.name,
        "weights.bin",
        "-o",
        str(empty),
        says="'tiny-llm' has no file 'weights.bin'",
    )
    assert not (empty / folder.name).exists()

    # the rest of the entry after a selection: the selected files are kept, the rest fetched
    out = tmp_path / "out-0"
    got = client.json("get", published["info_hash"], "-o", str(out), "--timeout", GET_TIMEOUT)
    assert tree(Path(got["path"])) == everything
    assert got["downloaded"] < sum(map(len, everything.values()))


def test_the_cache_returns_complete_data_at_once_offline_and_with_the_tracker_down(
    tmp_path: Path, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    deadline = time.monotonic() + TEST_TIMEOUT
    tracker, client = setup.tracker()
    folder = model_folder(tmp_path / "publisher")
    published = publish_and_seed(client, folder, deadline)
    v2, v1 = published["info_hash"], published["v1_info_hash"]
    total = sum(len(b) for b in tree(folder).values())

    first = client.json("get", folder.name, "--timeout", GET_TIMEOUT)
    path = client.cache.resolve() / "data" / v2 / folder.name
    assert Path(first["path"]) == path and tree(path) == tree(folder)
    assert first["downloaded"] >= total and first["reused"] == 0
    # the client's state is in the cache, nothing of it beside the data
    assert sorted(p.name for p in path.parent.iterdir()) == [folder.name]
    assert (client.cache / "state" / v2 / "torrent").is_file()
    # the record of what was verified matches the files as they are once the command ended
    record = Cache(client.cache).record(v2, path.parent)
    assert record is not None and sorted(record.files) == sorted(first["files"])
    assert all(record.intact(f) for f in first["files"]), [
        (f, record.files[f].mtime_ns, record.place(f).stat().st_mtime_ns) for f in record.files
    ]

    # a file changed behind the cache's back (same size, same mtime): --verify finds it
    shard = path / "model-00001.safetensors"
    st = shard.stat()
    with open(shard, "r+b") as f:
        f.write(b"\0" * 100)
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = client.json("get", v2, "--verify", "--timeout", GET_TIMEOUT)
    assert tree(Path(again["path"])) == tree(folder)
    assert 0 < again["downloaded"] < total

    # the tracker down: by hash, v1 hash, magnet and the name resolved before; no peer
    # session is started (it would rewrite the resume data when it ends)
    tracker.kill()
    resume = Cache(client.cache).resume_file(v2, path.parent)
    before = resume.stat().st_mtime_ns
    for what in (v2, v1, published["magnet"]):
        got = client.json("get", what)
        assert Path(got["path"]) == path and got["downloaded"] == 0, what
    assert resume.stat().st_mtime_ns == before
    result = client.run("get", folder.name)
    assert Path(result.stdout.decode().strip()) == path
    assert b"warning: cannot reach the tracker" in result.stderr
    # offline: the same without asking; a selection of what is there works too
    got = client.json("get", folder.name, "--offline", "--include", "*.json")
    assert Path(got["path"]) == path and sorted(got["files"]) == ["config.json", "tokenizer.json"]
    got = client.json("get", v2, "--offline", "--verify")
    assert got["downloaded"] == 0 and tree(Path(got["path"])) == tree(folder)
    fails(client, "get", "ab" * 32, "--offline", says="is not in the cache")
    fails(client, "get", "other-model", "--offline", says="is not in the cache")
    shard.unlink()
    fails(client, "get", v2, "--offline", says="not complete in the cache")
    # the Python API reads WL_CACHE and WL_TRACKER as the command does
    from weightless.client import get

    monkeypatch.setenv("WL_CACHE", str(client.cache))
    monkeypatch.setenv("WL_TRACKER", client.env["WL_TRACKER"])
    assert get(v2, include="*.json", offline=True) == path


def test_a_new_version_downloads_only_its_changed_shard(tmp_path: Path, setup: Setup) -> None:
    deadline = time.monotonic() + TEST_TIMEOUT
    _, client = setup.tracker()
    shards = [os.urandom(MiB), os.urandom(MiB), os.urandom(MiB)]
    old = model_folder(tmp_path / "v1", shards=shards)
    new = model_folder(tmp_path / "v2", shards=[shards[0], shards[1], os.urandom(MiB + 5)])
    (new / "config.json").write_text((old / "config.json").read_text())
    first = publish_and_seed(client, old, deadline, description="v1")
    second = publish_and_seed(client, new, deadline, description="v2")
    assert first["info_hash"] != second["info_hash"]

    got = client.json("get", first["info_hash"], "--timeout", GET_TIMEOUT)
    assert tree(Path(got["path"])) == tree(old) and got["reused"] == 0
    got = client.json("get", second["info_hash"], "--timeout", GET_TIMEOUT)
    assert tree(Path(got["path"])) == tree(new)
    changed = MiB + 5
    # the unchanged shards and the small files come from the cache
    assert got["reused"] == got["bytes"] - changed
    assert changed <= got["downloaded"] <= changed + 16384, got
    # linked, not copied, in one cache
    a = Path(got["path"]) / "model-00001.safetensors"
    b = client.cache / "data" / first["info_hash"] / old.name / "model-00001.safetensors"
    assert a.stat().st_ino == b.stat().st_ino


class Hostile:
    """A registry that answers every lookup with ``entry`` (marked verified) and serves
    ``torrent``, and passes announces on to a real tracker, so that a client fooled by it
    would find a real seeder of the wrong data."""

    def __init__(self, entry: dict[str, Any], torrent: bytes | None, tracker: Tracker) -> None:
        self.entry, self.torrent, self.tracker = entry, torrent, tracker
        self.asked: list[str] = []
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                hostile.asked.append(url.path)
                if url.path == "/announce":
                    upstream = f"http://127.0.0.1:{hostile.tracker.port}/announce?{url.query}"
                    with urllib.request.urlopen(upstream, timeout=10) as r:
                        self.answer(200, r.read(), "text/plain")
                elif url.path == "/api/registry":
                    self.answer(200, json.dumps(hostile.entry).encode())
                elif url.path == "/api/registry/search":
                    q = parse_qs(url.query).get("q", [""])[0]
                    self.answer(200, json.dumps([{**hostile.entry, "name": q}]).encode())
                elif url.path == "/api/registry/torrent" and hostile.torrent is not None:
                    self.answer(200, hostile.torrent, "application/x-bittorrent")
                elif url.path.startswith("/api/publishers/"):
                    self.answer(200, b'{"keys": []}')
                else:
                    self.answer(404, b'{"error": "no"}')

            def answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def test_a_hash_pins_the_torrent_whatever_the_registry_answers(
    tmp_path: Path, setup: Setup
) -> None:
    deadline = time.monotonic() + TEST_TIMEOUT
    tracker, client = setup.tracker()
    wanted = model_folder(tmp_path / "wanted", "victim-model")
    other = model_folder(tmp_path / "other", "victim-model")  # same name, other bytes
    torrent = client.json("create", str(wanted), "-o", str(tmp_path / "wanted.torrent"))
    decoy = publish_and_seed(client, other, deadline, publisher="trusted-lab")
    decoy_torrent = Path(decoy["torrent"]).read_bytes()
    decoy_entry = {**decoy["entry"], "verified": True}
    hostile = Hostile(decoy_entry, decoy_torrent, tracker)
    setup.servers.append(hostile.server)
    v2, v1 = torrent["info_hash"], torrent["v1_info_hash"]
    magnet = torrent["magnet"]

    def refused(*args: str, says: str) -> None:
        out = tmp_path / f"out-{len(hostile.asked)}"
        fails(
            client,
            "get",
            *args,
            "--tracker",
            hostile.url,
            "-o",
            str(out),
            "--timeout",
            "20",
            says=says,
        )
        assert not out.exists() or not any(out.iterdir())  # not a byte written
        assert not (client.cache / "data").exists()

    refused(v2, says=f"refusing the registry's answer for {v2}: its v2 info hash is")
    refused(v1, "--require-verified", says=f"its v1 info hash is {decoy['v1_info_hash']}")
    refused(magnet, says="hashes belong to different entries")
    refused(f"magnet:?xt=urn:btih:{v1}", says="hashes belong to different entries")
    # the right entry, the wrong file
    hostile.entry = {**decoy_entry, "info_hash": v2, "v1_info_hash": v1}
    refused(v2, says="has other info hashes")
    # the right entry and no file: the metadata peers send must have the hash; the decoy's
    # seeder is the only peer, and its metadata is refused (or never matches)
    hostile.torrent = None
    refused(v2, says="timed out")
    assert "/announce" in hostile.asked


def test_a_torrent_named_like_the_state_folder_cannot_move_another_download(
    tmp_path: Path, setup: Setup
) -> None:
    """The old layout kept resume data in DIR/.weightless; a torrent named ``.weightless``
    that carries a resume file naming an absolute path no longer steers any download."""
    deadline = time.monotonic() + TEST_TIMEOUT
    _, client = setup.tracker()
    victim = tmp_path / "victim" / "victim-model"
    victim.mkdir(parents=True)
    (victim / "victim.bin").write_bytes(os.urandom(300_000))
    made = client.json("create", str(victim), "-o", str(tmp_path / "victim.torrent"))
    trap = tmp_path / "attacker-owned"
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(str(tmp_path / "victim.torrent"))
    params.save_path = str(trap)
    params.renamed_files = {0: str(trap / "stolen.bin")}
    evil = tmp_path / "evil" / ".weightless"
    evil.mkdir(parents=True)
    (evil / f"{made['info_hash']}.resume").write_bytes(bytes(lt.write_resume_data_buf(params)))
    publish_and_seed(client, evil.parent / ".weightless", deadline)
    publish_and_seed(client, victim, deadline)
    out = tmp_path / "out"
    client.json("get", ".weightless", "-o", str(out), "--timeout", GET_TIMEOUT)
    got = client.json("get", "victim-model", "-o", str(out), "--timeout", GET_TIMEOUT)
    assert Path(got["path"]) == out.resolve() / "victim-model"
    assert tree(out / "victim-model") == tree(victim)
    assert not trap.exists()
    # the client's state is in the cache, and the torrent's files are data, nothing more
    assert (out / ".weightless" / f"{made['info_hash']}.resume").is_file()
    assert not any(p.name == ".weightless" for p in client.cache.rglob("*"))
    assert Cache(client.cache).record(made["info_hash"], out.resolve()) is not None
    shutil.rmtree(out)
