"""libtorrent as a real BitTorrent client of a tracker on loopback: content, hybrid torrents,
sessions, and the registry API calls the libtorrent tests make."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import libtorrent as lt

from integration.ports import free_port
from integration.waiting import eventually, wait_for

PIECE = 256 * 1024

SETTINGS: dict[str, Any] = {
    "listen_interfaces": "127.0.0.1:0",
    "outgoing_interfaces": "127.0.0.1",
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    # both clients live on 127.0.0.1
    "allow_multiple_connections_per_ip": True,
    "announce_to_all_tiers": True,
    "announce_to_all_trackers": True,
    # uTP over loopback only slows the transfer down
    "enable_outgoing_utp": False,
    "enable_incoming_utp": False,
    "stop_tracker_timeout": 2,
    "alert_mask": lt.alert_category.error | lt.alert_category.tracker | lt.alert_category.status,
}


def free_udp_port(host: str = "127.0.0.1") -> int:
    return free_port(host)


def make_content(root: Path) -> Path:
    """A few MB of random bytes in a folder of two files (a hybrid torrent aligns each file to
    a piece with a pad file)."""
    folder = root / "tiny-model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_bytes(
        json.dumps({"layers": 2, "seed": os.urandom(8).hex()}).encode()
    )
    (folder / "weights.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 12_345))
    return folder


def make_torrent(content: Path, piece_size: int = PIECE) -> bytes:
    """A hybrid (v1 + v2) torrent of ``content``, without trackers: each client is given its
    announce URL when it adds the torrent."""
    ct = lt.create_torrent(lt.list_files(str(content)), piece_size)
    lt.set_piece_hashes(ct, str(content.parent))
    return bytes(lt.bencode(ct.generate()))


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


class Client:
    """One libtorrent session holding one torrent; keeps the alerts it saw, for failure
    messages and for waiting on tracker replies."""

    def __init__(self, name: str, torrent: bytes, save_path: Path, tracker_url: str) -> None:
        self.name = name
        self.session: lt.session | None = lt.session(SETTINGS)
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(torrent)
        params.save_path = str(save_path)
        params.trackers = [tracker_url]
        # started now, and not queued by the session (which would resume it after close()
        # paused it)
        params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
        self.handle = self.session.add_torrent(params)
        self.log: list[str] = []
        self.announces = 0  # sent
        self.stops = 0  # sent with event=stopped
        self.replies = 0
        self.errors: list[str] = []

    def pump(self) -> None:
        assert self.session is not None
        for alert in self.session.pop_alerts():
            self.log.append(f"{type(alert).__name__}: {alert.message()}")
            if isinstance(alert, lt.tracker_announce_alert):
                self.announces += 1
                self.stops += alert.event == lt.event_t.stopped
            elif isinstance(alert, lt.tracker_reply_alert):
                self.replies += 1
            elif isinstance(alert, lt.tracker_error_alert):
                self.errors.append(alert.message())

    def answered(self) -> bool:
        """Every announce sent so far has its reply (or error)."""
        return self.replies + len(self.errors) >= self.announces

    def status(self) -> Any:
        return self.handle.status()

    def reannounce(self) -> None:
        """Announce now, whatever the min interval the tracker asked for."""
        self.handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)

    def wait(self, done: Callable[[], bool], what: str, deadline: float) -> None:
        """Poll until ``done()``; fail with the client's story at ``deadline`` (monotonic)."""

        def pumped() -> bool:
            self.pump()
            return done()

        wait_for(pumped, lambda: f"{what} ({self.name}):\n{self.report()}", deadline=deadline)

    def report(self) -> str:
        head = f"{self.name}: closed"
        if self.session is not None:
            s = self.status()
            head = (
                f"{self.name}: state={s.state} progress={s.progress:.3f} peers={s.num_peers} "
                f"seeds={s.num_seeds} uploaded={s.total_payload_upload} "
                f"downloaded={s.total_payload_download}"
            )
        return "\n".join([head, *self.log[-40:]])

    def close(self, timeout: float = 5.0) -> None:
        """Announce event=stopped (under both hashes) and stop the session.

        The torrent is paused first and its stopped announces awaited: libtorrent 2.1 sends
        no stopped announce to a UDP tracker when a session shuts down with the torrent still
        running (it does to an HTTP one)."""
        if self.session is None:
            return
        deadline = time.monotonic() + timeout
        # an announce still on its way would hold back the stopped one
        self._settle(self.answered, deadline)
        self.handle.pause()
        self._settle(lambda: self.stops >= 2 and self.answered(), deadline)  # one per hash
        self.session = None  # the last reference: the destructor waits for the shutdown

    def _settle(self, done: Callable[[], bool], deadline: float) -> None:
        """Like wait, but at the deadline it gives up quietly (close runs in teardowns)."""

        def pumped() -> bool:
            self.pump()
            return done()

        eventually(pumped, bool, deadline)


def request(
    port: int,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def get_json(port: int, target: str, key: str | None = None) -> tuple[int, Any]:
    headers = {} if key is None else {"X-Weightless-Key": key}
    return _json(*request(port, "GET", target, headers=headers))


def upload_torrent(port: int, torrent: bytes, key: str | None, **params: str) -> tuple[int, Any]:
    """POST /api/registry/torrent: the raw file, entry fields as query parameters."""
    headers = {"Content-Type": "application/x-bittorrent"}
    if key is not None:
        headers["X-Weightless-Key"] = key
    target = "/api/registry/torrent" + ("?" + urlencode(params) if params else "")
    return _json(*request(port, "POST", target, torrent, headers))


def _json(status: int, body: bytes) -> tuple[int, Any]:
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body
