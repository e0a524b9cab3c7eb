"""One libtorrent session holding one torrent: download it, seed it, resume it, stop it
cleanly. Peers come only from the given trackers unless DHT is asked for (then DHT, local
service discovery, peer exchange, UPnP and NAT-PMP are on, as in any desktop client)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import libtorrent as lt

from weightless.client.errors import ClientError
from weightless.client.trackers import hide_passkeys
from weightless.state.atomic import PUBLIC, write_atomic
from weightless.wire.units import human_size

POLL = 0.25  # seconds between status reports
STOP_WAIT = 3.0  # seconds to wait for the stopped announces when closing
DEFAULT_LISTEN = "0.0.0.0:6881,[::]:6881"


@dataclass(frozen=True)
class Status:
    """A snapshot of a transfer. Sizes in bytes, rates in bytes per second."""

    name: str
    state: str  # "metadata", "checking", "downloading", "seeding", "paused"
    total: int  # bytes wanted (the torrent's files, without pad files)
    done: int  # verified bytes on disk
    download_rate: float
    upload_rate: float
    peers: int  # connected peers, seeds included
    seeds: int
    downloaded: int  # payload bytes received in this run
    uploaded: int  # payload bytes sent in this run
    tracker_error: str | None  # the last tracker error, until an announce succeeds
    swarm_seeds: int = -1  # seeders the tracker lists (-1: not known yet)
    swarm_peers: int = -1  # leechers the tracker lists (-1: not known yet)

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, None when unknown."""
        if self.download_rate <= 0:
            return None
        return max(0, self.total - self.done) / self.download_rate


OnStatus = Callable[[Status], None]


@dataclass
class Settings:
    """How the session runs: ``listen`` is libtorrent's ``listen_interfaces`` (default all
    addresses, port 6881, another one if taken); ``dht`` lets peers come from the DHT, LSD and
    peer exchange too; rate limits in bytes per second (0 = none)."""

    listen: str | None = None
    dht: bool = False
    download_limit: int = 0
    upload_limit: int = 0


def _state(status: Any) -> str:
    states = lt.torrent_status.states
    if status.state == states.downloading_metadata:
        return "metadata"
    if status.state in (states.checking_files, states.checking_resume_data):
        return "checking"
    if status.is_seeding:
        return "seeding"
    if status.flags & lt.torrent_flags.paused:
        return "paused"
    return "downloading"


class Transfer:
    """A session with one torrent in it. Use as a context manager: leaving it pauses the
    torrent (the trackers get ``event=stopped``), saves resume data and ends the session."""

    def __init__(
        self,
        params: Any,  # lt.add_torrent_params, with ti or info_hashes, and save_path
        trackers: list[str],
        settings: Settings,
        resume_file: Path | None = None,
    ) -> None:
        pack: dict[str, Any] = {
            "listen_interfaces": settings.listen or DEFAULT_LISTEN,
            "enable_dht": settings.dht,
            "enable_lsd": settings.dht,
            "enable_upnp": settings.dht,
            "enable_natpmp": settings.dht,
            "download_rate_limit": settings.download_limit,
            "upload_rate_limit": settings.upload_limit,
            # outgoing connections over TCP: libtorrent's uTP moved 9 MB/s over loopback where
            # TCP moved 74 (bench/get_speed.py); peers that only speak uTP can still connect in
            "enable_outgoing_utp": False,
            # a limit the user asked for holds for peers on the LAN (and loopback) too
            "ignore_limits_on_local_network": False,
            # several peers behind one address (NAT, or one machine) are still several peers
            "allow_multiple_connections_per_ip": True,
            "stop_tracker_timeout": int(STOP_WAIT),
            # libtorrent's SSRF rule lets an announce to a loopback tracker through only on
            # the exact path /announce, which blocks /{passkey}/announce; the trackers here are
            # the user's own --tracker (override_trackers below), so on loopback it is off
            "ssrf_mitigation": not _on_loopback(trackers),
            "user_agent": f"weightless/{_version()} libtorrent/{lt.__version__}",
            "alert_mask": lt.alert_category.error
            | lt.alert_category.tracker
            | lt.alert_category.status
            | lt.alert_category.storage,
        }
        # no default plugins: they are chosen below
        self.session = lt.session(pack, 0)  # type: ignore[call-overload]
        self.session.add_extension("ut_metadata")  # BEP 9: metadata from peers
        self.session.add_extension("smart_ban")
        if settings.dht:
            self.session.add_extension("ut_pex")
        self.save_path = Path(params.save_path)
        self.info_hashes = params.ti.info_hashes() if params.ti is not None else params.info_hashes
        self.resume_file = resume_file
        resumed = None if resume_file is None else _read_resume(resume_file, self.info_hashes)
        if resumed is not None:
            params = merge_resume(resumed, params)
        params.trackers = trackers
        params.tracker_tiers = [0] * len(trackers)
        flags = params.flags | lt.torrent_flags.override_trackers
        flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
        if not settings.dht:
            flags |= lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
            flags |= lt.torrent_flags.disable_pex
        params.flags = flags
        try:
            self.handle = self.session.add_torrent(params)
        except RuntimeError as e:
            raise ClientError(f"libtorrent refused the torrent: {e}") from None
        if _on_loopback(trackers):  # the rest of the SSRF rule: no local web seed with a query
            for url in self.handle.url_seeds():
                if _on_loopback([url]) and urlsplit(url).query:
                    self.handle.remove_url_seed(url)
        self.tracker_error: str | None = None
        self.failure: str | None = None
        self.stops = self.announces = self.replies = 0
        self.started = time.monotonic()

    def __enter__(self) -> Transfer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- alerts and status

    def _pump(self) -> None:
        for alert in self.session.pop_alerts():
            if isinstance(alert, lt.tracker_announce_alert):
                self.announces += 1
                self.stops += alert.event == lt.event_t.stopped
            elif isinstance(alert, lt.tracker_reply_alert):
                self.replies += 1
                self.tracker_error = None
            elif isinstance(alert, lt.tracker_error_alert):
                self.replies += 1
                if _skipped(alert):  # a listen address that cannot reach it (IPv6 to IPv4)
                    continue
                # the tracker's own words when it sent a failure reason; else what went wrong
                reason = alert.failure_reason() or (
                    f"{alert.tracker_url()}: {alert.error_message() or alert.error.message()}"
                )
                self.tracker_error = hide_passkeys(reason)
            elif isinstance(alert, lt.file_error_alert):
                self.failure = f"cannot write the data: {alert.message()}"
            elif isinstance(alert, lt.torrent_error_alert):
                self.failure = alert.message()
            elif isinstance(alert, lt.metadata_failed_alert):
                self.failure = "the metadata peers sent does not match the info hash"

    def status(self) -> Status:
        self._pump()
        s = self.handle.status()
        if s.errc.value() and not self.failure:
            self.failure = f"{s.errc.message()}{self._file(s.error_file)}"
        return Status(
            name=s.name,
            state=_state(s),
            total=s.total_wanted,
            done=s.total_wanted_done,
            download_rate=float(s.download_payload_rate),
            upload_rate=float(s.upload_payload_rate),
            peers=s.num_peers,
            seeds=s.num_seeds,
            downloaded=s.total_payload_download,
            uploaded=s.total_payload_upload,
            tracker_error=self.tracker_error,
            swarm_seeds=s.num_complete,
            swarm_peers=s.num_incomplete,
        )

    def _file(self, index: int) -> str:
        ti = self.handle.torrent_file()
        if index < 0 or ti is None:
            return ""
        return f": {Path(self.save_path, ti.files().file_path(index))}"

    def _check(self) -> Status:
        status = self.status()
        if self.failure:
            raise ClientError(self.failure)
        return status

    @property
    def torrent_info(self) -> Any:
        return self.handle.torrent_file()

    def wait_metadata(self, deadline: float | None, on_status: OnStatus | None) -> None:
        """Until the torrent's metadata is there (BEP 9 from peers, for a magnet)."""
        while not self.handle.status().has_metadata:
            self._tick(deadline, on_status, "the metadata (BEP 9) from peers")

    def wait_complete(self, deadline: float | None, on_status: OnStatus | None) -> Status:
        """Until every piece is downloaded and verified; `ClientError` on a disk or torrent
        error or at ``deadline`` (monotonic seconds)."""
        while True:
            status = self._check()
            if self._complete(status):
                status = self.status()
                if on_status is not None:
                    on_status(status)
                return status
            self._tick(deadline, on_status, "the download")

    def _complete(self, status: Status) -> bool:
        """Every wanted piece (of the selected files) verified."""
        s = self.handle.status()
        return bool(
            s.has_metadata
            and s.state in (lt.torrent_status.states.seeding, lt.torrent_status.states.finished)
            and s.total_wanted_done == s.total_wanted
        )

    def wait_checked(self, deadline: float | None, on_status: OnStatus | None) -> bool:
        """Until libtorrent has checked the files on disk; whether every wanted piece is
        verified then."""
        while self.status().state in ("checking", "metadata"):
            self._tick(deadline, on_status, "the check of the files on disk")
        return self._complete(self._check())

    def file_progress(self) -> list[int]:
        """Verified bytes of each file of the torrent (pad files included), by file index."""
        return list(self.handle.file_progress(lt.torrent_handle.piece_granularity))

    def _tick(self, deadline: float | None, on_status: OnStatus | None, what: str) -> None:
        status = self._check()
        if on_status is not None:
            on_status(status)
        if deadline is not None and time.monotonic() > deadline:
            raise ClientError(
                f"timed out waiting for {what}: {percent(status)} of "
                f"{human_size(status.total)} after {time.monotonic() - self.started:.0f} s, "
                f"{status.peers} peers"
                + (f"; tracker: {status.tracker_error}" if status.tracker_error else "")
            )
        time.sleep(POLL)

    def seed_forever(self, on_status: OnStatus | None) -> None:
        """Seed until interrupted (KeyboardInterrupt)."""
        while True:
            self._tick(None, on_status, "nothing")

    # -- stopping

    def save_resume(self) -> None:
        """Write libtorrent's resume data (which pieces are verified) to the resume file."""
        if self.resume_file is None or not self.handle.status().has_metadata:
            return
        self.handle.save_resume_data()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for alert in self.session.pop_alerts():
                if isinstance(alert, lt.save_resume_data_alert):
                    data = bytes(lt.write_resume_data_buf(alert.params))
                    try:
                        self.resume_file.parent.mkdir(parents=True, exist_ok=True)
                        write_atomic(self.resume_file, data, PUBLIC)
                    except OSError:
                        pass  # resume data is an optimisation: a re-check finds the pieces
                    return
                if isinstance(alert, lt.save_resume_data_failed_alert):
                    return
            time.sleep(0.02)

    def close(self) -> None:
        """Pause (event=stopped to each tracker, awaited up to STOP_WAIT s), save resume
        data, end the session. Safe to call twice."""
        if self.session is None:
            return
        try:
            self._pump()
            self.handle.pause()
            deadline = time.monotonic() + STOP_WAIT
            while time.monotonic() < deadline and not (
                self.stops >= 1 and self.replies >= self.announces
            ):
                time.sleep(0.05)
                self._pump()
            self.save_resume()
        finally:
            self.session = None


def merge_resume(resumed: Any, params: Any) -> Any:
    """Resume data with only what it may say taken from it (which pieces are verified, the
    counters): where files go (save path, renamed files, part file), what they are (the info
    dict) and which are wanted come from ``params``, whatever the resume file says."""
    if params.ti is not None:
        resumed.ti = params.ti
    resumed.save_path = params.save_path
    resumed.renamed_files = {}
    resumed.part_file_dir = params.part_file_dir
    resumed.file_priorities = params.file_priorities
    resumed.flags = params.flags
    return resumed


def _read_resume(path: Path, hashes: Any) -> Any:
    """The add_torrent_params of a resume file of the same torrent, or None. libtorrent checks
    them against the files on disk and re-checks the files when they do not match."""
    try:
        resumed = lt.read_resume_data(path.read_bytes())
    except (OSError, RuntimeError):
        return None
    return resumed if resumed.info_hashes == hashes else None


def _skipped(alert: Any) -> bool:
    """libtorrent's ``announce_skipped``: a listen socket with no route to the tracker (each
    interface announces on its own); not an answer from the tracker."""
    return bool(alert.error.category().name() == "libtorrent" and alert.error.value() == 180)


def _on_loopback(urls: list[str]) -> bool:
    """Whether every URL's host is a loopback address (or ``localhost``)."""
    for url in urls:
        host = urlsplit(url).hostname or ""
        if host == "localhost":
            continue
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return False
        except ValueError:
            return False
    return bool(urls)


def percent(status: Status) -> str:
    """The verified share of the data, rounded down: ``100%`` only when every byte is
    verified (99.99% of it is not done, and must not read as done); ``0%`` while the size is
    not known."""
    return f"{100 * status.done // status.total}%" if status.total > 0 else "0%"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("weightless")
    except Exception:
        return "0"
