"""The client's Python API (weightless.client.api) with a registry played in memory and a
fake in place of the libtorrent session: what search, publish, get, seed and verify ask the
registry, what they hand the transfer, and what they return or refuse."""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import libtorrent as lt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from registry_kit import make_torrent

from weightless.client import api, fetching, signatures
from weightless.client.errors import ClientError
from weightless.client.trackers import Tracker
from weightless.client.transfer import Settings, Status
from weightless.torrent import signing
from weightless.torrent.metainfo import parse_torrent
from weightless.wire.units import human_size

from .kit import Served, entry, entry_of, serve

URL = "http://t.example:8080"
TRACKER = Tracker(URL)
KEY = Ed25519PrivateKey.from_private_bytes(b"k" * 32)
PUB = signing.public_bytes(KEY).hex()


class FakeTransfer:
    """Stands for `weightless.client.transfer.Transfer`: records what it was given, has the
    torrent's metadata at once (``metadata`` for a magnet) and completes at the first wait."""

    made: list[FakeTransfer] = []
    metadata: bytes | None = None
    states: list[str] = ["seeding"]

    def __init__(
        self,
        params: Any,
        trackers: list[str],
        settings: Settings,
        resume_file: Path | None = None,
    ) -> None:
        self.params = params
        self.resume_file = resume_file
        self.priorities: list[int] | None = None
        self.handle = SimpleNamespace(
            prioritize_files=lambda p: setattr(self, "priorities", list(p)),
            unset_flags=lambda flags: None,
        )
        self.trackers = trackers
        self.settings = settings
        self.save_path = Path(params.save_path)
        self.failure: str | None = None
        self.deadline: float | None = None
        self.seeded = self.closed = False
        self.states = list(type(self).states)
        type(self).made.append(self)

    def __enter__(self) -> FakeTransfer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    @property
    def torrent_info(self) -> Any:
        if self.params.ti is not None:
            return self.params.ti
        assert self.metadata is not None
        return lt.torrent_info(self.metadata)

    def status(self) -> Status:
        ti = self.torrent_info
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        total = ti.total_size()
        done = total if state == "seeding" else total // 2
        return Status(ti.name(), state, total, done, 0.0, 0.0, 0, 0, 1234, 0, None)

    def wait_metadata(self, deadline: float | None, on_status: Any) -> None:
        self.deadline = deadline

    def wait_complete(self, deadline: float | None, on_status: Any) -> Status:
        status = self.status()
        if on_status is not None:
            on_status(status)
        return status

    def wait_checked(self, deadline: float | None, on_status: Any) -> bool:
        return self.status().state == "seeding"

    def file_progress(self) -> list[int]:
        fs = self.torrent_info.layout()
        done = self.status().state == "seeding"
        return [fs.file_size(i) if done else 0 for i in range(fs.num_files())]

    def seed_forever(self, on_status: Any) -> None:
        self.seeded = True
        raise KeyboardInterrupt


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Served:
    for name in ("WL_TRACKER", "WL_API_KEY", "REGISTRY_KEY", "TRACKER_SECRET", "WL_PASSKEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WL_CACHE", str(tmp_path / "cache"))
    FakeTransfer.made = []
    FakeTransfer.metadata = None
    FakeTransfer.states = ["seeding"]
    monkeypatch.setattr(api, "Transfer", FakeTransfer)
    monkeypatch.setattr(fetching, "Transfer", FakeTransfer)
    monkeypatch.setattr(api.time, "sleep", lambda seconds: None)
    return serve(monkeypatch)


@pytest.fixture
def torrent(tmp_path: Path) -> bytes:
    (tmp_path / "src").mkdir()
    return make_torrent(tmp_path / "src", "weights.bin")


def registered(served: Served, data: bytes, **fields: Any) -> dict[str, Any]:
    return served.add(entry_of(data, **fields), data)


def uploads(served: Served) -> list[httpx.Request]:
    return [r for r in served.requests if r.method == "POST"]


# -- search and passkey


def test_search_asks_the_tracker_given_or_wl_tracker(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.add(entry(name="llama"))
    page = api.search("LLA", tracker=URL, limit=5)
    assert (page.total, [e["name"] for e in page.entries]) == (1, ["llama"])
    monkeypatch.setenv("WL_TRACKER", "http://elsewhere.example:9000")
    api.search(None)
    assert [r.url.host for r in served.requests] == ["t.example", "elsewhere.example"]
    monkeypatch.delenv("WL_TRACKER")
    api.search(None)
    assert str(served.requests[-1].url).startswith("http://localhost:8080/api/registry/search")


def test_passkey_is_user_id_and_hmac(monkeypatch: pytest.MonkeyPatch) -> None:
    key = api.passkey("alice", "s3cret")
    user, mac = key.split(".")
    assert user == "alice" and len(mac) == 64
    monkeypatch.setenv("TRACKER_SECRET", "s3cret")
    assert api.passkey("alice") == key
    assert api.passkey("alice", "other") != key
    with pytest.raises(ClientError):
        api.passkey("bad id!", "s3cret")


# -- create and publish


def test_create_writes_the_torrent_with_the_trackers_announce_urls(tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(os.urandom(50_000))
    out = tmp_path / "out.torrent"
    created = api.create(tmp_path / "m.bin", tracker=TRACKER, output=out)
    info = parse_torrent(out.read_bytes())
    assert created.torrent == out and not out.with_name("out.torrent.part").exists()
    assert (created.info_hash, created.v1_info_hash) == (
        info.v2_info_hash.hex(),  # type: ignore[union-attr]
        info.v1_info_hash_hex,
    )
    assert created.magnet.endswith("&dn=m.bin&tr=http%3A%2F%2Ft.example%3A8080%2Fannounce")
    assert set(created.as_json()) == {"torrent", "info_hash", "v1_info_hash", "magnet"}


def test_create_into_a_missing_folder_is_a_client_error(tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(b"x" * 1000)
    with pytest.raises(ClientError) as e:
        api.create(tmp_path / "m.bin", tracker=TRACKER, output=tmp_path / "no" / "x.torrent")
    assert str(e.value).startswith(f"cannot write {tmp_path / 'no' / 'x.torrent'}: ")


def test_publish_a_torrent_uploads_its_exact_bytes(
    served: Served, torrent: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.torrent"
    path.write_bytes(torrent)
    monkeypatch.setenv("REGISTRY_KEY", "from-env")
    served.api_key = "from-env"
    published = api.publish(path, tracker=TRACKER, fields={"publisher": "acme", "tags": ""})
    upload = uploads(served)[0]
    assert upload.content == torrent
    assert dict(upload.url.params) == {"publisher": "acme"}
    assert published.entry == served.entries[parse_torrent(torrent).info_hash_hex]
    assert published.entry["publisher"] == "acme"
    assert published.created.torrent == path
    assert published.as_json()["entry"] == published.entry
    assert published.get_command(TRACKER) == (
        f"weightless get {published.entry['info_hash']} --tracker {URL}"
    )
    assert published.get_command(Tracker()) == f"weightless get {published.entry['info_hash']}"


def test_publish_prefers_the_key_given_then_wl_api_key(
    served: Served, torrent: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.torrent"
    path.write_bytes(torrent)
    monkeypatch.setenv("WL_API_KEY", "wl")
    monkeypatch.setenv("REGISTRY_KEY", "reg")
    api.publish(path, tracker=TRACKER, api_key="given")
    api.publish(path, tracker=TRACKER)
    keys = [r.headers.get("X-Weightless-Key") for r in served.requests if r.method == "POST"]
    assert keys == ["given", "wl"]


def test_publish_with_a_bad_key(served: Served, torrent: bytes, tmp_path: Path) -> None:
    path = tmp_path / "w.torrent"
    path.write_bytes(torrent)
    served.api_key = "right"
    with pytest.raises(ClientError) as e:
        api.publish(path, tracker=TRACKER, api_key="wrong")
    assert "(HTTP 401)" in str(e.value) and "--api-key" in str(e.value)


def test_publish_refuses_unknown_fields_before_asking(served: Served, torrent: bytes) -> None:
    with pytest.raises(ClientError) as e:
        api.publish("x.torrent", tracker=TRACKER, fields={"name": "m", "colour": "b", "size": "1"})
    assert str(e.value) == "unknown registry fields: colour, size"
    assert served.requests == []


def test_publish_data_creates_the_torrent_first(served: Served, tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(os.urandom(30_000))
    out = tmp_path / "made.torrent"
    published = api.publish(
        tmp_path / "data.bin", tracker=TRACKER, fields={"name": "Data"}, output=out
    )
    assert uploads(served)[0].content == out.read_bytes()
    assert published.entry["name"] == "Data"
    assert published.created.torrent == out


def test_publish_signed_signs_the_local_file_too(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "w.torrent"
    path.write_bytes(torrent)
    published = api.publish(path, tracker=TRACKER, sign=signatures.signer(KEY))
    uploaded = uploads(served)[0].content
    assert uploaded != torrent and path.read_bytes() == uploaded
    assert [s.public_key_hex for s in parse_torrent(uploaded).signatures] == [PUB]
    assert published.created.info_hash == parse_torrent(torrent).info_hash_hex


def test_publish_refuses_a_signer_that_changes_the_hashes(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "w.torrent"
    path.write_bytes(torrent)
    other = make_torrent(tmp_path, "other.bin")
    with pytest.raises(ClientError) as e:
        api.publish(path, tracker=TRACKER, sign=lambda data: other)
    assert str(e.value) == "signing changed the info hash"
    assert served.requests == [] and path.read_bytes() == torrent


def test_publish_when_the_registry_does_not_show_the_entry(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "w.torrent"
    path.write_bytes(torrent)
    served.override = lambda r: (
        httpx.Response(201, json={"status": "created"})
        if r.method == "POST"
        else httpx.Response(404, json={"error": "not found"})
    )
    with pytest.raises(ClientError) as e:
        api.publish(path, tracker=TRACKER)
    assert str(e.value) == "the registry accepted the torrent but does not show it"


def test_republishing_keeps_every_field_not_given(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "w.torrent"
    path.write_bytes(torrent)
    fields = {
        "name": "Weights",
        "description": "what it is",
        "publisher": "acme",
        "license": "mit",
        "category": "models",
        "tags": "llm,demo",
        "version": "v1",
    }
    api.publish(path, tracker=TRACKER, fields=fields)
    published = api.publish(path, tracker=TRACKER, fields={"description": "better words"})
    assert dict(uploads(served)[-1].url.params) == {**fields, "description": "better words"}
    assert {k: published.entry[k] for k in fields} == {**fields, "description": "better words"}


def test_a_refused_publish_leaves_the_local_files_as_they_were(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    signed_path = tmp_path / "w.torrent"
    signed = signatures.signer(KEY)(torrent)
    signed_path.write_bytes(signed)
    served.api_key = "right"
    with pytest.raises(ClientError, match="HTTP 401"):
        api.publish(signed_path, tracker=TRACKER, api_key="wrong", sign=signatures.signer(KEY))
    assert signed_path.read_bytes() == signed
    # data made into a torrent: nothing written over the signed file of the same name
    data = tmp_path / "data"
    data.mkdir()
    (data / "weights.bin").write_bytes(os.urandom(20_000))
    with pytest.raises(ClientError, match="HTTP 401"):
        api.publish(data, tracker=TRACKER, api_key="wrong", output=signed_path)
    assert signed_path.read_bytes() == signed
    with pytest.raises(ClientError, match="HTTP 401"):
        api.publish(data, tracker=TRACKER, api_key="wrong", output=tmp_path / "new.torrent")
    assert not (tmp_path / "new.torrent").exists()
    published = api.publish(data, tracker=TRACKER, api_key="right", output=tmp_path / "new.torrent")
    assert (tmp_path / "new.torrent").read_bytes() == uploads(served)[-1].content
    assert published.created.torrent == tmp_path / "new.torrent"


def test_the_readme_is_the_card_and_its_front_matter_fills_license_and_tags(
    served: Served, tmp_path: Path
) -> None:
    folder = tmp_path / "tiny-model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(os.urandom(20_000))
    readme = "---\nlicense: apache-2.0\ntags: [llm, tiny]\n---\n# Tiny model\n"
    (folder / "README.md").write_text(readme, encoding="utf-8")
    published = api.publish(
        folder, tracker=TRACKER, fields={"tags": "given"}, output=tmp_path / "t.torrent"
    )
    params = dict(uploads(served)[0].url.params)
    assert params["license"] == "apache-2.0"  # from the card
    assert params["tags"] == "given"  # the command line first
    puts = [r for r in served.requests if r.method == "PUT"]
    assert [r.url.params["info_hash"] for r in puts] == [published.entry["info_hash"]]
    assert puts[0].headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert served.cards[published.entry["info_hash"]] == readme


def test_card_gives_another_file_and_a_torrent_sends_none_unless_asked(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "w.torrent"
    path.write_bytes(torrent)
    (tmp_path / "README.md").write_text("# not sent\n", encoding="utf-8")
    api.publish(path, tracker=TRACKER)
    assert served.cards == {}
    card = tmp_path / "CARD.md"
    card.write_text("---\ntags: a,b\n---\n# Card\n", encoding="utf-8")
    published = api.publish(path, tracker=TRACKER, card=card)
    assert served.cards == {published.entry["info_hash"]: card.read_text()}
    assert published.entry["tags"] == "a,b"


def test_bad_front_matter_stops_before_anything_is_hashed_or_sent(
    served: Served, tmp_path: Path
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "README.md").write_text("---\ntags: [unclosed\n---\n", encoding="utf-8")
    hashed: list[int] = []
    with pytest.raises(ClientError, match="not valid YAML"):
        api.publish(folder, tracker=TRACKER, on_hashed=lambda done, total: hashed.append(done))
    assert served.requests == [] and hashed == []


def test_a_refused_card_is_one_line_after_the_entry_is_registered(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "w.torrent"
    path.write_bytes(torrent)
    card = tmp_path / "card.md"
    card.write_text("# card\n", encoding="utf-8")
    served.override = lambda r: (
        httpx.Response(413, json={"error": "the card is larger than 256 KiB"})
        if r.method == "PUT"
        else None
    )
    with pytest.raises(ClientError) as e:
        api.publish(path, tracker=TRACKER, card=card)
    assert str(e.value) == (
        "registered, but storing the model card failed: the card is larger than 256 KiB (HTTP 413)"
    )


def test_token_is_the_publisher_and_an_hmac_of_the_registry_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hashlib
    import hmac

    mac = hmac.new(b"reg", b"publisher:acme", hashlib.sha256).hexdigest()
    assert api.token("acme", "reg") == f"acme.{mac}"
    monkeypatch.setenv("REGISTRY_KEY", "reg")
    assert api.token("acme") == f"acme.{mac}"
    monkeypatch.delenv("REGISTRY_KEY")
    with pytest.raises(ClientError, match="REGISTRY_KEY"):
        api.token("acme")
    with pytest.raises(ClientError):
        api.token("", "reg")


# -- get / fetch


def test_get_hands_the_registry_torrent_to_the_transfer(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    found = registered(served, torrent, name="weights")
    statuses: list[Status] = []
    out = tmp_path / "models"
    fetched = fetching.fetch(
        "weights",
        tracker=URL,
        output=out,
        passkey="alice." + "a" * 64,
        settings=Settings(dht=True, download_limit=500),
        timeout=60,
        on_status=statuses.append,
    )
    (transfer,) = FakeTransfer.made
    assert transfer.params.ti.info_hashes().v2.to_bytes().hex() == found["info_hash"]
    assert transfer.params.save_path == str(out.resolve()) and out.is_dir()
    assert transfer.trackers == TRACKER.announce_urls("alice." + "a" * 64)
    assert transfer.settings == Settings(dht=True, download_limit=500)
    assert transfer.deadline is not None and transfer.closed
    assert fetched.path == out.resolve() / "weights.bin"
    assert (fetched.info_hash, fetched.v1_info_hash) == (
        found["info_hash"],
        found["v1_info_hash"],
    )
    assert fetched.bytes == statuses[-1].total and fetched.downloaded == 1234
    assert fetched.as_json() == {
        "path": str(fetched.path),
        "info_hash": found["info_hash"],
        "v1_info_hash": found["v1_info_hash"],
        "bytes": fetched.bytes,
        "downloaded": 1234,
        "reused": 0,
        "files": ["weights.bin"],
    }
    assert fetching.get(found["info_hash"], tracker=URL, output=out) == fetched.path


def test_get_of_an_unregistered_magnet_fetches_metadata_from_peers(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    info = parse_torrent(torrent)
    FakeTransfer.metadata = torrent
    uri = f"magnet:?xt=urn:btih:{info.v1_info_hash_hex}&dn=peers"
    fetched = fetching.fetch(uri, tracker=URL, output=tmp_path / "o")
    (transfer,) = FakeTransfer.made
    assert transfer.params.ti is None and transfer.params.name == "peers"
    assert transfer.params.info_hashes.v1.to_bytes().hex() == info.v1_info_hash_hex
    assert fetched.v1_info_hash == info.v1_info_hash_hex


def test_get_with_require_verified_refuses_before_any_transfer(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    found = registered(served, torrent)
    with pytest.raises(ClientError) as e:
        fetching.fetch(
            found["info_hash"], tracker=URL, output=tmp_path / "o", require_verified=True
        )
    assert "is not verified by the registry (--require-verified)" in str(e.value)
    assert FakeTransfer.made == [] and not (tmp_path / "o").exists()


def test_get_refuses_a_registry_torrent_of_other_hashes(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    found = registered(served, torrent)
    served.torrents[found["info_hash"]] = make_torrent(tmp_path, "swapped.bin")
    with pytest.raises(ClientError) as e:
        fetching.fetch(found["info_hash"], tracker=URL, output=tmp_path / "o")
    assert str(e.value) == (
        f"the registry's .torrent of {found['info_hash']} has other info hashes"
    )
    assert FakeTransfer.made == []


def test_get_runs_the_callers_check(served: Served, torrent: bytes, tmp_path: Path) -> None:
    found = registered(served, torrent)
    seen: list[Any] = []

    def check(data: bytes | None, e: dict[str, Any] | None) -> None:
        seen.append((data, e))
        raise ClientError("not this one")

    with pytest.raises(ClientError, match="not this one"):
        fetching.fetch(found["info_hash"], tracker=URL, output=tmp_path / "o", check=check)
    assert seen == [(torrent, found)]


def test_get_without_room_on_disk(
    served: Served, torrent: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = registered(served, torrent)

    class Usage:
        free = 10

    monkeypatch.setattr(fetching.shutil, "disk_usage", lambda p: Usage)
    with pytest.raises(ClientError) as e:
        fetching.fetch(found["info_hash"], tracker=URL, output=tmp_path / "o")
    size = parse_torrent(torrent).total_size
    assert str(e.value) == (
        f"not enough space in {tmp_path / 'o'}: {human_size(size)} needed, 10 B free"
    )


def test_get_counts_what_is_already_on_disk_toward_the_room(
    served: Served, torrent: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resumed download needs room only for what is missing."""
    found = registered(served, torrent)
    out = tmp_path / "o"
    out.mkdir()
    (out / "weights.bin").write_bytes((tmp_path / "src" / "weights.bin").read_bytes())

    class Usage:
        free = 10

    monkeypatch.setattr(fetching.shutil, "disk_usage", lambda p: Usage)
    assert fetching.fetch(found["info_hash"], tracker=URL, output=out).path == out / "weights.bin"


def test_get_then_seed_calls_on_done_first(served: Served, torrent: bytes, tmp_path: Path) -> None:
    found = registered(served, torrent)
    done: list[fetching.Fetched] = []
    with pytest.raises(KeyboardInterrupt):
        fetching.fetch(
            found["info_hash"], tracker=URL, output=tmp_path, seed=True, on_done=done.append
        )
    (transfer,) = FakeTransfer.made
    assert len(done) == 1 and transfer.seeded and transfer.closed


def test_get_into_a_path_that_is_a_file(served: Served, torrent: bytes, tmp_path: Path) -> None:
    found = registered(served, torrent)
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ClientError) as e:
        fetching.fetch(found["info_hash"], tracker=URL, output=tmp_path / "file" / "sub")
    assert str(e.value).startswith(f"cannot make {tmp_path / 'file' / 'sub'}: ")


# -- seed


def test_seed_a_torrent_file_from_the_folder_holding_its_data(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "w.torrent"
    path.write_bytes(torrent)
    FakeTransfer.states = ["checking", "checking", "seeding"]
    ready: list[Any] = []
    statuses: list[Status] = []
    with pytest.raises(KeyboardInterrupt):
        api.seed(path, tmp_path / "src", tracker=URL, ready=ready.append, on_status=statuses.append)
    (transfer,) = FakeTransfer.made
    assert ready == [transfer] and transfer.seeded
    assert transfer.params.save_path == str((tmp_path / "src").resolve())
    assert not transfer.params.flags & lt.torrent_flags.seed_mode
    assert [s.state for s in statuses] == ["checking", "checking"]
    # a .torrent file needs no registry: only the tracker is asked whether it will serve us
    assert [r.url.path for r in served.requests] == ["/scrape"]


def test_seed_given_the_data_itself_and_trusted(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "w.torrent"
    path.write_bytes(torrent)
    with pytest.raises(KeyboardInterrupt):
        api.seed(path, tmp_path / "src" / "weights.bin", tracker=URL, trust=True)
    (transfer,) = FakeTransfer.made
    assert transfer.params.save_path == str((tmp_path / "src").resolve())
    assert transfer.params.flags & lt.torrent_flags.seed_mode
    assert transfer.params.flags & lt.torrent_flags.upload_mode


def test_seed_refuses_data_that_does_not_verify(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "w.torrent"
    path.write_bytes(torrent)
    FakeTransfer.states = ["downloading"]
    with pytest.raises(ClientError) as e:
        api.seed(path, tmp_path / "src", tracker=URL)
    assert str(e.value) == (
        f"the data in {(tmp_path / 'src').resolve()} does not match 'weights.bin': "
        "49% of it verifies"  # half of an odd size, rounded down
    )
    # the check runs with nothing requested from peers: seed never writes into the folder
    (transfer,) = FakeTransfer.made
    assert transfer.params.flags & lt.torrent_flags.upload_mode
    assert not transfer.params.flags & lt.torrent_flags.seed_mode


def test_seed_without_the_data(served: Served, torrent: bytes, tmp_path: Path) -> None:
    path = tmp_path / "w.torrent"
    path.write_bytes(torrent)
    with pytest.raises(ClientError) as e:
        api.seed(path, tmp_path, tracker=URL)
    assert str(e.value) == (
        f"{tmp_path} holds no 'weights.bin' (give the folder that holds it, or the data itself)"
    )
    assert FakeTransfer.made == []


def test_seed_by_name_takes_the_registry_torrent(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    registered(served, torrent, name="w")
    with pytest.raises(KeyboardInterrupt):
        api.seed("w", tmp_path / "src", tracker=URL)
    (transfer,) = FakeTransfer.made
    assert (
        transfer.params.ti.info_hashes().v1.to_bytes().hex()
        == parse_torrent(torrent).v1_info_hash_hex
    )


def test_seed_by_name_without_a_stored_torrent(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    found = served.add(entry_of(torrent, name="w"))  # no .torrent stored
    with pytest.raises(ClientError) as e:
        api.seed("w", tmp_path / "src", tracker=URL)
    assert str(e.value) == f"the registry has no .torrent file of {found['info_hash']}"


# -- verify


def signed(torrent: bytes) -> bytes:
    return signatures.sign_bytes(torrent, KEY)


def test_verify_a_file_offline_asks_nothing(served: Served, torrent: bytes, tmp_path: Path) -> None:
    path = tmp_path / "s.torrent"
    path.write_bytes(signed(torrent))
    found = api.verify(str(path), tracker=URL, offline=True)
    assert (found.signed, found.valid, found.public_key, found.trusted) == (True, True, PUB, None)
    assert served.requests == []


def test_verify_a_file_asks_the_keys_trusted_for_the_entrys_publisher(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "s.torrent"
    path.write_bytes(signed(torrent))
    registered(served, torrent, publisher="acme")
    served.keys["acme"] = [PUB.upper()]
    assert api.verify(str(path), tracker=URL).trusted is True
    assert api.verify(str(path), tracker=URL, publisher="other").trusted is False


def test_verify_a_file_when_the_registry_is_down_still_checks_the_signature(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "s.torrent"
    path.write_bytes(signed(torrent))

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    served.override = down
    found = api.verify(str(path), tracker=URL)
    assert found.valid and found.trusted is None
    assert found.reason.startswith(f"signed by key {PUB} (trust not checked: cannot reach")


def test_verify_an_unsigned_file(served: Served, torrent: bytes, tmp_path: Path) -> None:
    path = tmp_path / "u.torrent"
    path.write_bytes(torrent)
    found = api.verify(str(path), tracker=URL)
    assert (found.signed, found.valid) == (False, False)
    assert served.requests == []  # nothing to trust


def test_verify_a_file_that_is_not_a_torrent(served: Served, tmp_path: Path) -> None:
    path = tmp_path / "x.torrent"
    path.write_bytes(b"not bencode")
    with pytest.raises(ClientError, match="is not a valid torrent file"):
        api.verify(str(path), tracker=URL)


def test_verify_an_entry(served: Served, torrent: bytes) -> None:
    data = signed(torrent)
    info = parse_torrent(data)
    sig = info.signatures[0]
    registered(
        served,
        data,
        name="s",
        publisher="acme",
        publisher_key=sig.public_key_hex,
        signature=sig.signature_hex,
    )
    served.keys["acme"] = [PUB]
    found = api.verify("s", tracker=URL)
    assert (found.signed, found.valid, found.public_key, found.trusted) == (True, True, PUB, True)


def test_verify_an_unsigned_entry_and_an_unknown_one(served: Served, torrent: bytes) -> None:
    registered(served, torrent, name="plain")
    assert api.verify("plain", tracker=URL).signed is False
    with pytest.raises(ClientError, match="is named 'nothing'"):
        api.verify("nothing", tracker=URL)
    with pytest.raises(ClientError, match=re.escape(f"is not in the registry at {URL}")):
        api.verify("magnet:?xt=urn:btih:" + "01" * 20, tracker=URL)


def test_publish_when_the_upload_answer_is_not_an_object(
    served: Served, torrent: bytes, tmp_path: Path
) -> None:
    """A registry that answers the upload with something other than a JSON object must give
    one clear line, not a traceback (the check belongs in Registry.upload)."""
    path = tmp_path / "w.torrent"
    path.write_bytes(torrent)
    served.override = lambda r: httpx.Response(201, json=["ok"]) if r.method == "POST" else None
    with pytest.raises(ClientError):
        api.publish(path, tracker=TRACKER)


def test_get_reads_wl_passkey_and_wl_cache(
    served: Served, torrent: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = registered(served, torrent)
    key = "alice." + "b" * 64
    monkeypatch.setenv("WL_PASSKEY", key)
    monkeypatch.setenv("WL_CACHE", str(tmp_path / "elsewhere"))
    path = fetching.get(found["info_hash"], tracker=URL)
    (transfer,) = FakeTransfer.made
    assert transfer.trackers == TRACKER.announce_urls(key)
    assert path == (tmp_path / "elsewhere" / "data" / found["info_hash"]).resolve() / "weights.bin"
    assert (
        tmp_path / "elsewhere" / "state" / found["info_hash"] / "torrent"
    ).read_bytes() == torrent
