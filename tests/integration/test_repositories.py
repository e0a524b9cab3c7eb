"""Repositories end to end, as a publisher and a downloader use them: a publisher token from
`weightless token`, two versions of one folder published with `--version` (the README.md as
the model card, its front matter giving license and tags), both seeded, and `get org/name`
fetching the newer while `get org/name@v1` fetches the older; republishing keeps what it was
not given, and a refused publish leaves the local .torrent alone."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.client_kit import KEY, Client, start_tracker, tree
from integration.lt_helpers import get_json, request
from integration.process import Tracker

pytestmark = pytest.mark.integration

TEST_TIMEOUT = 240.0  # seconds for the test: bounds a failure only
GET_TIMEOUT = "120"
README = """---
license: apache-2.0
tags: [llm, tiny]
---
# Tiny model

A model small enough for a test.
"""


@pytest.fixture
def tracker_and_client(tmp_path: Path) -> Iterator[tuple[Tracker, Client]]:
    tracker, udp_port = start_tracker(tmp_path, udp=False)
    client = Client(tracker, tmp_path, udp_port)
    try:
        yield tracker, client
    finally:
        client.close()
        tracker.kill()


def version_folder(root: Path, label: str) -> Path:
    """``root/label/tiny-model``: the same name and README in every version, other weights."""
    folder = root / label / "tiny-model"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text(README, encoding="utf-8")
    (folder / "config.json").write_text(f'{{"version": "{label}"}}')
    (folder / "model.safetensors").write_bytes(os.urandom(700_000))
    return folder


def test_two_versions_published_seeded_and_fetched_by_name(
    tmp_path: Path, tracker_and_client: tuple[Tracker, Client]
) -> None:
    deadline = time.monotonic() + TEST_TIMEOUT
    tracker, client = tracker_and_client
    token = client.run("token", "org", env={"REGISTRY_KEY": KEY}).stdout.decode().strip()
    assert token.startswith("org.") and KEY not in token
    with_token = {"WL_API_KEY": token}

    published = {}
    for label in ("v1", "v2"):
        folder = version_folder(tmp_path / "publisher", label)
        published[label] = client.json(
            "publish",
            str(folder),
            "-o",
            str(tmp_path / f"{label}.torrent"),
            "--publisher",
            "org",
            "--version",
            label,
            env=with_token,
        )
        # created_at is to the second: the versions are a second apart, as real ones are
        time.sleep(1.1)
    v1, v2 = published["v1"]["entry"], published["v2"]["entry"]
    assert (v1["version"], v2["version"]) == ("v1", "v2")
    assert v1["created_at"] < v2["created_at"]
    for found in (v1, v2):
        assert (found["publisher"], found["name"]) == ("org", "tiny-model")
        assert (found["license"], found["tags"]) == ("apache-2.0", "llm,tiny")  # the card's
        status, card = request(
            tracker.port, "GET", f"/api/registry/card?info_hash={found['info_hash']}"
        )
        assert (status, card.decode()) == (200, README)

    for label in ("v1", "v2"):
        seeder = client.start(
            "seed", published[label]["info_hash"], "--data", str(tmp_path / "publisher" / label)
        )
        client.wait_seeding(seeder, deadline)

    wanted = {
        "org/tiny-model": "v2",  # the newest
        "org/tiny-model@v1": "v1",
        "tiny-model": "v2",  # one publisher has the name
        "tiny-model@v1": "v1",
        f"org/tiny-model@{v1['info_hash'][:10]}": "v1",  # a hash prefix
        f"org/tiny-model@{v2['v1_info_hash'][:8]}": "v2",
    }
    for n, (what, label) in enumerate(wanted.items()):
        out = tmp_path / f"get-{n}"
        result = client.run("get", what, "-o", str(out), "--timeout", GET_TIMEOUT)
        path = Path(result.stdout.decode().strip())
        assert path == out.resolve() / "tiny-model", what
        assert tree(path) == tree(tmp_path / "publisher" / label / "tiny-model"), what

    unknown = client.run("get", "org/tiny-model@v3", "-o", str(tmp_path / "no"), ok=False)
    assert unknown.returncode == 1
    assert b"no registry entry" in unknown.stderr and b"v3" in unknown.stderr

    # the page lists both, newest first
    status, page = request(tracker.port, "GET", "/repos/org/tiny-model")
    assert status == 200
    assert page.index(v2["info_hash"].encode()) < page.index(v1["info_hash"].encode())
    assert b"<h1>Tiny model</h1>" in page and b"license: apache-2.0" not in page  # the card

    # republishing v1 with one field changed keeps the others
    again = client.json(
        "publish",
        str(tmp_path / "v1.torrent"),
        "--description",
        "the first one",
        env=with_token,
    )["entry"]
    assert again["description"] == "the first one"
    kept = ("publisher", "name", "version", "license", "tags", "created_at")
    assert {k: again[k] for k in kept} == {k: v1[k] for k in kept}

    # another publisher's token is refused, and the local .torrent is left as it was
    before = (tmp_path / "v2.torrent").read_bytes()
    rival = client.run("token", "rival", env={"REGISTRY_KEY": KEY}).stdout.decode().strip()
    refused = client.run(
        "publish",
        str(tmp_path / "publisher" / "v2" / "tiny-model"),
        "-o",
        str(tmp_path / "v2.torrent"),
        "--publisher",
        "org",
        "--api-key",
        rival,
        ok=False,
    )
    assert refused.returncode == 1 and b"HTTP 403" in refused.stderr
    assert (tmp_path / "v2.torrent").read_bytes() == before
    status, body = get_json(tracker.port, f"/api/registry?info_hash={v2['info_hash']}")
    assert status == 200 and body["publisher"] == "org"
