"""``weightless publish PATH_OR_TORRENT`` with `api.create`, `api.publish` and `api.seed`
replaced by fakes: a .torrent uploaded as it is, data made into one first, the registry
fields, signing, seeding after, and the one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from weightless.client import api, keys
from weightless.client.errors import ClientError
from weightless.client.torrents import Made
from weightless.client.trackers import Tracker

from .kit import error_line, help_text, invoke, made, ok


class Fakes:
    def __init__(self, torrent: Made, path: Path) -> None:
        self.torrent = torrent
        self.path = path
        self.created: list[dict[str, Any]] = []
        self.published: list[dict[str, Any]] = []
        self.seeded: list[dict[str, Any]] = []
        self.refuse: str | None = None
        self.answered: dict[str, Any] = {}  # more fields of the entry the registry answers

    def create(self, path: str, **options: Any) -> api.Created:
        self.created.append({"path": path, **options})
        out = Path(options["output"] or self.path)
        return api.Created(out, self.torrent.info_hash, None, "magnet:?made", self.torrent)

    def publish(self, path_or_torrent: str | Path, **options: Any) -> api.Published:
        self.published.append({"path": path_or_torrent, **options})
        if self.refuse:
            raise ClientError(self.refuse)
        written = options.get("output") or path_or_torrent
        created = api.Created(
            Path(written), self.torrent.info_hash, None, "magnet:?xt=m", self.torrent
        )
        entry = {"info_hash": self.torrent.info_hash, "name": "weights", "publisher": "acme"}
        entry.update(self.answered)
        return api.Published(created, entry)

    def seed(self, torrent: str, data: str, **options: Any) -> None:
        self.seeded.append({"torrent": torrent, "data": data, **options})
        raise KeyboardInterrupt


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Fakes:
    torrent = made(tmp_path / "data")
    path = tmp_path / "w.torrent"
    path.write_bytes(torrent.data)
    found = Fakes(torrent, path)
    monkeypatch.setattr(api, "create", found.create)
    monkeypatch.setattr(api, "publish", found.publish)
    monkeypatch.setattr(api, "seed", found.seed)
    return found


def test_help() -> None:
    text = help_text("publish")
    for option in ("--publisher", "--api-key KEY", "--sign KEYFILE", "--seed", "--data DIR"):
        assert option in text


def test_a_torrent_file_is_uploaded_as_it_is(fakes: Fakes) -> None:
    result = ok(
        invoke(
            "publish",
            str(fakes.path),
            "--name",
            "weights",
            "--publisher",
            "acme",
            "--license",
            "MIT",
            "--tags",
            "",
            "--api-key",
            "k",
            "--tracker",
            "http://t.example:8080",
        )
    )
    assert fakes.created == []
    (call,) = fakes.published
    assert call["path"] == str(fakes.path)
    assert call["fields"] == {"name": "weights", "publisher": "acme", "license": "MIT"}
    assert call["card"] is None
    assert call["api_key"] == "k" and call["sign"] is None
    assert call["tracker"] == Tracker("http://t.example:8080")
    lines = result.stdout.splitlines()
    assert lines[0] == "registered 'weights' at http://t.example:8080"
    assert f"  info_hash: {fakes.torrent.info_hash}" in lines
    assert lines[-2:] == [
        "magnet: magnet:?xt=m",
        f"fetch it with: weightless get {fakes.torrent.info_hash} --tracker http://t.example:8080",
    ]


def test_data_is_hashed_and_published_in_one_call(fakes: Fakes, tmp_path: Path) -> None:
    """publish makes the torrent itself, so that it writes the .torrent only once the
    registry accepted it."""
    data, out = str(tmp_path / "data"), str(tmp_path / "new.torrent")
    ok(invoke("publish", data, "-o", out, "--v1-only", "--exclude", "*.log"))
    assert fakes.created == []
    (call,) = fakes.published
    assert call["path"] == str(tmp_path / "data")
    assert call["output"] == str(tmp_path / "new.torrent")
    assert call["v1_only"] is True and call["piece_length"] == 0
    assert call["exclude"] == ("*.log",)
    assert call["fields"] == {} and callable(call["on_hashed"])


def test_version_and_card(fakes: Fakes, tmp_path: Path) -> None:
    card = tmp_path / "CARD.md"
    card.write_text("# card\n")
    ok(invoke("publish", str(fakes.path), "--version", "v2.1", "--card", str(card)))
    (call,) = fakes.published
    assert call["fields"] == {"version": "v2.1"} and call["card"] == str(card)
    missing = invoke("publish", str(fakes.path), "--card", str(tmp_path / "missing.md"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_the_entry_a_registry_answers_is_shown_escaped(fakes: Fakes) -> None:
    """What `publish` prints comes from the registry's answer: a hostile one cannot write the
    clipboard, clear the screen, plant a link or reorder text with it; --json stays JSON."""
    fakes.answered = {
        "name": "w\x1b]52;c;cm0gLXJmIH4=\x07",
        "publisher": "\x9b2Jacme",
        "tags": ["\x1b]8;;https://evil.example/\x1b\\tag\x1b]8;;\x1b\\"],
        "description": "line one\nline two \u202egnp.exe \x1b[2J",
    }
    shown = ok(invoke("publish", str(fakes.path))).stdout
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", shown)
    assert "\\x1b]52;c;cm0gLXJmIH4=\\x07" in shown and "\\x9b2Jacme" in shown
    assert "line one\\x0aline two \\u202egnp.exe \\x1b[2J" in shown
    entry = json.loads(ok(invoke("publish", str(fakes.path), "--json")).stdout)["entry"]
    assert entry["description"] == fakes.answered["description"]


def test_the_size_is_shown_in_binary_units_with_the_bytes(fakes: Fakes) -> None:
    for size, shown in (
        (500101, "488.4 KiB (500,101 bytes)"),
        (3 * 1024**3, "3.0 GiB (3,221,225,472 bytes)"),
        (12, "12 B (12 bytes)"),
    ):
        fakes.answered = {"size": size}
        assert f"  size: {shown}" in ok(invoke("publish", str(fakes.path))).stdout.splitlines()
    fakes.answered = {"size": 500101}
    entry = json.loads(ok(invoke("publish", str(fakes.path), "--json")).stdout)["entry"]
    assert entry["size"] == 500101


def test_api_key_from_the_environment(fakes: Fakes) -> None:
    ok(invoke("publish", str(fakes.path), env={"REGISTRY_KEY": "reg"}))
    ok(invoke("publish", str(fakes.path), env={"WL_API_KEY": "wl", "REGISTRY_KEY": "reg"}))
    assert [c["api_key"] for c in fakes.published] == ["reg", "wl"]


def test_json(fakes: Fakes) -> None:
    found = json.loads(ok(invoke("publish", str(fakes.path), "--json")).stdout)
    assert found == {
        "torrent": str(fakes.path),
        "info_hash": fakes.torrent.info_hash,
        "v1_info_hash": None,
        "magnet": "magnet:?xt=m",
        "entry": {"info_hash": fakes.torrent.info_hash, "name": "weights", "publisher": "acme"},
    }


def test_sign_reads_the_key_first(fakes: Fakes, tmp_path: Path) -> None:
    key = tmp_path / "me.key"
    keys.generate(key)
    ok(invoke("publish", str(fakes.path), "--sign", str(key)))
    assert callable(fakes.published[0]["sign"])
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    line = error_line(invoke("publish", str(tmp_path / "data"), "--sign", str(bad)))
    assert line.startswith(f"Error: {bad} is not a PKCS#8 PEM or OpenSSH private key file")
    assert fakes.created == [] and len(fakes.published) == 1  # nothing hashed for a bad key


def test_a_refusal_is_one_line(fakes: Fakes) -> None:
    fakes.refuse = "registering the torrent: info_hash is blocked (HTTP 409)"
    assert error_line(invoke("publish", str(fakes.path))) == (
        "Error: registering the torrent: info_hash is blocked (HTTP 409)"
    )


def test_seed_a_torrent_file_needs_its_data(fakes: Fakes) -> None:
    result = invoke("publish", str(fakes.path), "--seed")
    assert result.exit_code == 1 and fakes.seeded == []
    assert result.stderr.strip() == (
        "Error: --seed with a .torrent needs --data DIR (the folder of its data)"
    )
    assert result.stdout.startswith("registered")  # registered all the same


def test_seed_after_publishing_a_torrent(fakes: Fakes, tmp_path: Path) -> None:
    result = ok(invoke("publish", str(fakes.path), "--seed", "--data", str(tmp_path / "data")))
    (call,) = fakes.seeded
    assert (call["torrent"], call["data"]) == (str(fakes.path), str(tmp_path / "data"))
    assert call["trust"] is False  # a file from elsewhere: its data is checked first
    assert result.stderr.strip().endswith("stopped seeding")


def test_seed_after_publishing_data_trusts_what_was_just_hashed(
    fakes: Fakes, tmp_path: Path
) -> None:
    ok(invoke("publish", str(tmp_path / "data"), "--seed", "-o", str(tmp_path / "n.torrent")))
    (call,) = fakes.seeded
    assert call["torrent"] == str(tmp_path / "n.torrent")
    assert call["data"] == str(tmp_path)  # the folder holding the data
    assert call["trust"] is True
