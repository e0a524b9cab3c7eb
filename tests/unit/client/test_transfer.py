"""The parts of weightless.client.transfer that need no libtorrent session: status snapshots
and their ETA, settings, the state names a person sees, where resume data lives and which
resume files are taken. (A real session is tested in tests/integration.)"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import libtorrent as lt
import pytest

from weightless.client import transfer
from weightless.client.transfer import Settings, Status

STATUS = Status(
    name="m",
    state="downloading",
    total=1000,
    done=250,
    download_rate=50.0,
    upload_rate=0.0,
    peers=3,
    seeds=1,
    downloaded=250,
    uploaded=0,
    tracker_error=None,
)
STATES = lt.torrent_status.states


def test_eta_is_what_is_left_at_the_current_rate() -> None:
    assert STATUS.eta == 15.0
    assert replace(STATUS, download_rate=0.0).eta is None
    assert replace(STATUS, download_rate=-1.0).eta is None
    assert replace(STATUS, done=1000).eta == 0.0
    assert replace(STATUS, done=2000).eta == 0.0  # never negative


def test_percent_of_verified_bytes_is_rounded_down() -> None:
    assert transfer.percent(STATUS) == "25%"
    assert transfer.percent(replace(STATUS, done=1000)) == "100%"
    # all but a few bytes is not done: it must not read as 100% (nor 1 byte of 1000 as 0.1)
    assert transfer.percent(replace(STATUS, done=999)) == "99%"
    assert transfer.percent(replace(STATUS, total=500103, done=500079)) == "99%"
    assert transfer.percent(replace(STATUS, done=1)) == "0%"
    assert transfer.percent(replace(STATUS, total=0, done=0)) == "0%"  # metadata not there


def test_default_settings_take_peers_from_the_tracker_only_without_limits() -> None:
    assert Settings() == Settings(listen=None, dht=False, download_limit=0, upload_limit=0)
    assert transfer.DEFAULT_LISTEN == "0.0.0.0:6881,[::]:6881"


def status(state: object, seeding: bool = False, paused: bool = False) -> SimpleNamespace:
    flags = lt.torrent_flags.paused if paused else 0
    return SimpleNamespace(state=state, is_seeding=seeding, flags=flags)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (status(STATES.downloading_metadata), "metadata"),
        (status(STATES.checking_files), "checking"),
        (status(STATES.checking_resume_data), "checking"),
        (status(STATES.seeding, seeding=True), "seeding"),
        (status(STATES.finished, seeding=True), "seeding"),
        (status(STATES.downloading, paused=True), "paused"),
        (status(STATES.downloading), "downloading"),
        (status(STATES.finished), "downloading"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_state_names(raw: SimpleNamespace, shown: str) -> None:
    assert transfer._state(raw) == shown


def test_metadata_and_checking_come_before_seeding_or_paused() -> None:
    raw = status(STATES.checking_files, seeding=True, paused=True)
    assert transfer._state(raw) == "checking"


V1 = lt.sha1_hash(bytes(range(20)))
V2 = lt.sha256_hash(bytes(range(32)))


def resume_data(hashes: object) -> bytes:
    params = lt.add_torrent_params()
    params.info_hashes = hashes
    params.save_path = "/nowhere"
    return bytes(lt.write_resume_data_buf(params))


def test_resume_data_of_the_same_torrent_is_taken(tmp_path: Path) -> None:
    hashes = lt.info_hash_t(V1, V2)
    path = tmp_path / "resume"
    path.write_bytes(resume_data(hashes))
    resumed = transfer._read_resume(path, hashes)
    assert resumed is not None and resumed.info_hashes == hashes


def test_resume_data_of_another_torrent_missing_or_garbage_is_ignored(tmp_path: Path) -> None:
    hashes = lt.info_hash_t(V1, V2)
    path = tmp_path / "x.resume"
    assert transfer._read_resume(path, hashes) is None  # no file
    path.write_bytes(resume_data(lt.info_hash_t(V1)))
    assert transfer._read_resume(path, hashes) is None  # another torrent (v1 alone)
    path.write_bytes(b"not bencode at all")
    assert transfer._read_resume(path, hashes) is None
    folder = tmp_path / "a-folder.resume"
    folder.mkdir()
    assert transfer._read_resume(folder, hashes) is None  # unreadable


def test_resume_data_cannot_move_the_files(tmp_path: Path) -> None:
    """A resume file that names other places (a save path, a file renamed to an absolute
    path, a part file folder) or other wanted files decides none of them."""
    hashes = lt.info_hash_t(V1, V2)
    hostile = lt.add_torrent_params()
    hostile.info_hashes = hashes
    hostile.save_path = "/elsewhere"
    hostile.renamed_files = {0: "/home/victim/.bashrc", 1: "../../x"}
    hostile.part_file_dir = "/elsewhere/parts"
    hostile.file_priorities = [4, 4]
    path = tmp_path / "resume"
    path.write_bytes(bytes(lt.write_resume_data_buf(hostile)))
    resumed = transfer._read_resume(path, hashes)
    assert resumed is not None and resumed.renamed_files  # the file does say it
    ours = lt.add_torrent_params()
    ours.save_path = str(tmp_path / "data")
    ours.part_file_dir = str(tmp_path / "state")
    ours.file_priorities = [4, 0]
    merged = transfer.merge_resume(resumed, ours)
    assert merged.save_path == str(tmp_path / "data")
    assert merged.renamed_files == {}
    assert merged.part_file_dir == str(tmp_path / "state")
    assert list(merged.file_priorities) == [4, 0]


def test_version_is_the_installed_package_version() -> None:
    from importlib.metadata import version

    assert transfer._version() == version("weightless")


@pytest.mark.parametrize(
    ("urls", "loopback"),
    [
        (["http://127.0.0.1:8080/alice.x/announce", "udp://127.0.0.1:8080/announce"], True),
        (["http://[::1]:8080/announce"], True),
        (["http://localhost:8080/announce"], True),
        (["http://127.0.0.1:8080/announce", "udp://10.0.0.1:8080/announce"], False),
        (["http://tracker.example/announce"], False),
        (["http://192.168.1.2/announce"], False),  # a LAN tracker keeps libtorrent's rule
        ([], False),
    ],
)
def test_ssrf_rule_is_off_only_for_a_loopback_tracker(urls: list[str], loopback: bool) -> None:
    assert transfer._on_loopback(urls) is loopback
