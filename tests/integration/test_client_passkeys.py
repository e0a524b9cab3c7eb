"""Passkeys as the ``weightless`` command's users meet them, against a real tracker with
TRACKER_SECRET on loopback, over HTTP only (no UDP): without a passkey ``publish --seed``,
``seed`` and ``get`` stop at once with the tracker's words, before any hashing; a refused
passkey likewise; the passkey is never printed in full; with passkeys a get completes over
HTTP (libtorrent's SSRF rule does not block the user's own loopback tracker), from the command
and from ``weightless.client.get`` reading WL_PASSKEY."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import make_passkey

from integration.client_kit import KEY, Client, make_folder, start_tracker, tree
from integration.process import Tracker

pytestmark = pytest.mark.integration

SECRET = "passkey test secret"
AT_ONCE = 20.0  # seconds: a refusal comes from one scrape, not from a download timing out
NEEDS = "this tracker needs a passkey"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Tracker, Client]]:
    tracker, _ = start_tracker(tmp_path, udp=False, env={"TRACKER_SECRET": SECRET})
    client = Client(tracker, tmp_path)  # WL_UDP_PORT=off: HTTP announces only
    try:
        yield tracker, client
    finally:
        client.close()
        tracker.kill()


def refused(client: Client, *args: str, says: str) -> str:
    """The command fails at once with one line saying ``says``; returns the line."""
    started = time.monotonic()
    result = client.run(*args, ok=False)
    took = time.monotonic() - started
    error = result.stderr.decode(errors="replace").strip()
    assert result.returncode == 1, error
    assert error.count("\n") == 0 and says in error, error
    assert "unreachable" not in error and "skipping" not in error  # not libtorrent's noise
    assert took < AT_ONCE, (took, error)
    return error


def test_passkeys_over_http_on_a_loopback_tracker(
    tmp_path: Path, setup: tuple[Tracker, Client]
) -> None:
    _, client = setup
    alice = make_passkey(SECRET, "alice")
    bob = make_passkey(SECRET, "bob")
    folder = make_folder(tmp_path / "publisher")
    torrent = tmp_path / "m.torrent"

    # publish --seed without a passkey: stopped before hashing (no .torrent written)
    error = refused(
        client,
        "publish",
        str(folder),
        "-o",
        str(torrent),
        "--api-key",
        KEY,
        "--seed",
        says=NEEDS,
    )
    assert "--passkey" in error and not torrent.exists()

    published = client.json(
        "publish", str(folder), "-o", str(torrent), "--api-key", KEY, "--passkey", alice
    )
    v2 = published["info_hash"]

    # seed and get without a passkey, and with a forged one: the tracker's words, at once
    refused(client, "seed", str(torrent), "--data", str(folder.parent), says=NEEDS)
    refused(client, "get", v2, "-o", str(tmp_path / "none"), says=NEEDS)
    assert not (tmp_path / "none").exists()
    forged = "alice." + "0" * 64
    error = refused(
        client,
        "get",
        v2,
        "-o",
        str(tmp_path / "forged"),
        "--passkey",
        forged,
        says="invalid passkey",
    )
    assert forged not in error

    # with passkeys, over HTTP only, on loopback: seeding and a whole download
    seeder = client.start("seed", str(torrent), "--data", str(folder.parent), "--passkey", alice)
    client.wait_seeding(seeder, time.monotonic() + 120)
    got = client.run("get", v2, "-o", str(tmp_path / "bob"), "--passkey", bob, "--timeout", "120")
    path = Path(got.stdout.decode().strip())
    assert tree(path) == tree(folder)
    assert bob not in got.stderr.decode(errors="replace")

    # the Python API reads WL_PASSKEY as the command does
    code = (
        "import sys; from weightless import client; "
        f"print(client.get({v2!r}, output=sys.argv[1], timeout=120))"
    )
    api = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "api")],
        env={**client.env, "WL_PASSKEY": bob},
        capture_output=True,
        timeout=180,
    )
    assert api.returncode == 0, api.stderr.decode(errors="replace")
    assert tree(Path(api.stdout.decode().strip())) == tree(folder)

    assert client.interrupt(seeder) == 0
    assert alice not in client.stderr_of(seeder)  # status lines: alice.… at most


def test_create_leaves_out_litter_and_refuses_a_link_out(
    tmp_path: Path, setup: tuple[Tracker, Client]
) -> None:
    _, client = setup
    folder = make_folder(tmp_path / "data")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main")
    (folder / ".DS_Store").write_bytes(b"\0" * 10)
    made = client.json("create", str(folder), "-o", str(tmp_path / "a.torrent"))
    listed = client.run(
        "create", str(folder), "-o", str(tmp_path / "b.torrent"), "--exclude", "sub dir"
    )
    assert made["info_hash"] and b"in 3 files" in listed.stdout  # sub dir/ left out too
    (folder / "sub dir" / "passwd").symlink_to("/etc/passwd")
    result = client.run("create", str(folder), "-o", str(tmp_path / "c.torrent"), ok=False)
    error = result.stderr.decode().strip()
    assert result.returncode == 1 and "\n" not in error
    assert "sub dir/passwd" in error and "/etc/passwd, outside the folder" in error
    assert not (tmp_path / "c.torrent").exists()
