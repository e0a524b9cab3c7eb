"""Signed torrents end to end, with the ``weightless`` command against a real tracker: keygen,
publish --sign, the operator trusts the key, get --require-verified; forged signatures refused
by the registry and by ``get`` before any data is written; a torrent signed here checked by a
verifier written from the documented byte layout alone, sharing no code with the client."""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from signature_kit import from_scratch_verify

from integration.client_kit import KEY, Client, make_folder, start_tracker, tree
from integration.lt_helpers import get_json, request
from integration.process import Tracker

pytestmark = pytest.mark.integration


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Tracker, Client]]:
    tracker, udp_port = start_tracker(tmp_path)
    client = Client(tracker, tmp_path, udp_port)
    try:
        yield tracker, client
    finally:
        client.close()
        tracker.kill()


def put_keys(tracker: Tracker, publisher: str, keys: list[str]) -> int:
    status, _ = request(
        tracker.port,
        "PUT",
        f"/api/publishers/{publisher}",
        json.dumps({"keys": keys}).encode(),
        {"Content-Type": "application/json", "X-Weightless-Key": KEY},
    )
    return status


def entry(tracker: Tracker, info_hash: str) -> dict[str, Any]:
    status, body = get_json(tracker.port, f"/api/registry?info_hash={info_hash}")
    assert status == 200, body
    found: dict[str, Any] = body
    return found


def refused(client: Client, *args: str) -> str:
    result = client.run(*args, ok=False)
    assert result.returncode != 0, result.stdout
    message: str = result.stderr.decode(errors="replace").strip()
    assert message.count("\n") == 0 and "Traceback" not in message, message
    return message


def test_keygen_publish_sign_trust_and_get_verified(
    tmp_path: Path, running: tuple[Tracker, Client]
) -> None:
    tracker, client = running
    folder = make_folder(tmp_path / "publisher")

    made = client.json("keygen", "-o", "publisher.key")
    key_file = tmp_path / "publisher.key"
    assert made == {"public_key": made["public_key"], "key_file": "publisher.key"}
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    public = made["public_key"]
    assert len(public) == 64
    # human output: the public key alone on stdout
    again = client.run("keygen", "-o", "second.key")
    assert len(again.stdout.decode().strip()) == 64
    assert "already exists" in refused(client, "keygen", "-o", "publisher.key")

    published = client.json(
        "publish",
        str(folder),
        "-o",
        str(tmp_path / "m.torrent"),
        "--api-key",
        KEY,
        "--publisher",
        "weightless-lab",
        "--sign",
        str(key_file),
    )
    v2, v1 = published["info_hash"], published["v1_info_hash"]
    assert published["entry"]["publisher_key"] == public
    assert published["entry"]["verified"] is False
    # the local file is the signed one, the same bytes as the registry's, and it verifies
    # with a check written from the byte layout alone
    local = (tmp_path / "m.torrent").read_bytes()
    assert request(tracker.port, "GET", f"/api/registry/torrent?info_hash={v2}") == (200, local)
    assert [k.hex() for k in from_scratch_verify(local)] == [public]
    _, meta = get_json(tracker.port, f"/api/registry/meta?info_hash={v2}")
    assert meta["signed"] is True and meta["public_keys"] == [public]

    assert client.json("verify", v2) == {
        "signed": True,
        "valid": True,
        "public_key": public,
        "trusted": False,
    }
    # not trusted yet: --require-verified refuses, and writes nothing
    out = tmp_path / "get-1"
    assert "not verified" in refused(client, "get", v2, "-o", str(out), "--require-verified")
    assert not out.exists() or not any(out.iterdir())

    # the operator trusts the key for the publisher
    assert put_keys(tracker, "weightless-lab", [public]) == 200
    assert entry(tracker, v1)["verified"] is True
    for what in (v2, str(tmp_path / "m.torrent")):
        assert client.json("verify", what) == {
            "signed": True,
            "valid": True,
            "public_key": public,
            "trusted": True,
        }

    deadline = time.monotonic() + 60
    seeder = client.start("seed", v2, "--data", str(folder.parent))
    client.wait_seeding(seeder, deadline)
    result = client.run("get", v2, "-o", str(out), "--require-verified", "--timeout", "120")
    path = Path(result.stdout.decode().strip())
    assert tree(path) == tree(folder)

    # signing the same file again with the same key is refused, another key is added
    assert "already signed by key" in refused(
        client, "sign", str(tmp_path / "m.torrent"), "--key", str(key_file)
    )
    other = client.json("sign", str(tmp_path / "m.torrent"), "--key", "second.key")
    assert other["public_key"] != public
    assert len(from_scratch_verify((tmp_path / "m.torrent").read_bytes())) == 2


def test_forgeries_are_refused(tmp_path: Path, running: tuple[Tracker, Client]) -> None:
    tracker, client = running
    folder = make_folder(tmp_path / "publisher", "forged model")
    public = client.json("keygen", "-o", "k.key")["public_key"]
    client.json("keygen", "-o", "attacker.key")
    published = client.json(
        "publish",
        str(folder),
        "-o",
        str(tmp_path / "f.torrent"),
        "--api-key",
        KEY,
        "--publisher",
        "lab",
        "--sign",
        "k.key",
    )
    v2, v1 = published["info_hash"], published["v1_info_hash"]
    good = entry(tracker, v2)
    assert put_keys(tracker, "lab", [public]) == 200

    # re-registered with a forged signature (the attacker's signature under the lab's key)
    attacker = tmp_path / "attacker.torrent"
    attacker.write_bytes((tmp_path / "f.torrent").read_bytes())
    client.run("sign", str(attacker), "--key", "attacker.key")
    data = attacker.read_bytes()
    forged_sig = data[data.rindex(b"3:sig64:") + 8 :][:64].hex()
    body = {
        "info_hash": v2,
        "v1_info_hash": v1,
        "name": "forged",
        "publisher": "lab",
        "publisher_key": public,
        "signature": forged_sig,
    }
    status, answer = request(
        tracker.port,
        "POST",
        "/api/registry",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "X-Weightless-Key": KEY},
    )
    assert status == 400 and b"does not verify" in answer, answer
    assert entry(tracker, v2) == good | {"verified": True}

    # a .torrent whose signatures were tampered with is refused at upload
    sig = bytes.fromhex(good["signature"])
    tampered = data.replace(sig, bytes([sig[0] ^ 1]) + sig[1:])
    status, answer = request(
        tracker.port,
        "POST",
        "/api/registry/torrent",
        tampered,
        {"Content-Type": "application/x-bittorrent", "X-Weightless-Key": KEY},
    )
    assert status == 400 and b"signature 1" in answer, answer
    (tmp_path / "tampered.torrent").write_bytes(tampered)
    assert "signature 1" in refused(
        client, "publish", str(tmp_path / "tampered.torrent"), "--api-key", KEY
    )
    assert client.run("verify", str(tmp_path / "tampered.torrent"), ok=False).returncode == 1
    found = json.loads(
        client.run("verify", str(tmp_path / "tampered.torrent"), "--json", ok=False).stdout
    )
    assert (found["signed"], found["valid"]) == (True, False)

    # a registry whose stored signature was changed behind its back (a restored backup, a
    # compromised database): get refuses before it writes anything
    tracker.stop()
    conn = sqlite3.connect(tracker.db)
    with conn:
        conn.execute(
            "UPDATE registry SET signature = ? WHERE info_hash = ?",
            (base64.b16encode(bytes(64)).decode().lower(), v2),
        )
    conn.close()
    tracker.start()
    out = tmp_path / "get"
    message = refused(client, "get", v2, "-o", str(out), "--timeout", "120")
    assert "does not verify" in message, message
    assert not out.exists() or not any(out.iterdir())
    result = client.run("verify", v2, "--json", ok=False)
    assert result.returncode == 1 and json.loads(result.stdout)["valid"] is False
