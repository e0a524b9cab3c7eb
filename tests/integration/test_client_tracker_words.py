"""What a transfer says about its tracker (weightless.client.transfer with a real libtorrent
session): the tracker's failure reason in its own words, not libtorrent's per-interface
"skipping tracker announce (unreachable)" from listen addresses with no route to it, and the
passkey in the announce URL never in full. The tracker is a server written in the test."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import libtorrent as lt
import pytest

from integration.hostile_http import HostileServer
from weightless.client.trackers import make_passkey
from weightless.client.transfer import Settings, Transfer

pytestmark = pytest.mark.integration


def refusing(reason: bytes) -> object:
    def behave(conn: socket.socket, head: bytes) -> None:
        time.sleep(2)  # meanwhile only libtorrent's own errors can come
        body = b"d14:failure reason%d:%se" % (len(reason), reason)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    return behave


@pytest.mark.parametrize("with_passkey", [True, False])
def test_the_tracker_refusal_in_its_words(tmp_path: Path, with_passkey: bool) -> None:
    server = HostileServer(refusing(b"your account is suspended"))  # type: ignore[arg-type]
    passkey = make_passkey("alice", "s")
    path = f"/{passkey}/announce" if with_passkey else "/announce"
    params = lt.add_torrent_params()
    params.info_hashes = lt.info_hash_t(lt.sha1_hash(os.urandom(20)))
    params.save_path = str(tmp_path)
    # an IPv6 listen address cannot reach an IPv4 tracker: libtorrent reports it as an error
    settings = Settings(listen="127.0.0.1:0,[::1]:0")
    try:
        with Transfer(params, [server.url + path], settings) as transfer:
            said: set[str | None] = set()  # everything the status line would have shown
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and "your account" not in str(said):
                said.add(transfer.status().tracker_error)
                time.sleep(0.01)
            settle = time.monotonic() + 1  # the other interfaces' errors have come by now
            while time.monotonic() < settle:
                said.add(transfer.status().tracker_error)
                time.sleep(0.01)
    finally:
        server.close()
    assert said == {None, "your account is suspended"}
    assert server.seen.heads and server.seen.heads[0].startswith(f"GET {path}?".encode())
