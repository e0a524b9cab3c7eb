"""The ``weightless`` command end to end: publish, seed and get against a real ``twistd
weightless`` on free ports, by every name a download can be asked for, with passkeys, over UDP
only, resumed after an interruption, from a web seed alone, and from peers when the registry
has no .torrent (BEP 9)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest
from helpers import announce_path, bdecode, make_passkey

from integration.client_kit import KEY, Client, make_folder, start_tracker, tree, web_server
from integration.lt_helpers import get_json, request
from integration.process import Tracker
from integration.waiting import eventually
from weightless.client.cache import Cache

pytestmark = pytest.mark.integration

TEST_TIMEOUT = 180.0  # seconds for one test: bounds a failure only
GET_TIMEOUT = "120"  # a get's own --timeout where it should succeed (or fail otherwise)
SECRET = "client test secret"


class Setup:
    def __init__(self) -> None:
        self.trackers: list[Tracker] = []
        self.clients: list[Client] = []
        self.procs: list[Any] = []

    def tracker(self, workdir: Path, **options: Any) -> tuple[Tracker, Client]:
        tracker, udp_port = start_tracker(workdir, **options)
        self.trackers.append(tracker)
        client = Client(tracker, workdir, udp_port)
        self.clients.append(client)
        return tracker, client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for proc in self.procs:
            proc.kill()
            proc.wait()
        for tracker in self.trackers:
            tracker.kill()


@pytest.fixture
def setup() -> Iterator[Setup]:
    s = Setup()
    try:
        yield s
    finally:
        s.close()


def entry(tracker: Tracker, info_hash: str) -> dict[str, Any]:
    status, body = get_json(tracker.port, f"/api/registry?info_hash={info_hash}")
    assert status == 200, body
    found: dict[str, Any] = body
    return found


def counts(tracker: Tracker, info_hash: str, deadline: float, want: tuple[int, int, int]) -> None:
    """Wait for (seeders, leechers, completions) of the entry to be ``want``."""
    found = eventually(
        lambda: entry(tracker, info_hash),
        lambda e: (e["seeders"], e["leechers"], e["completions"]) == want,
        deadline,
    )
    assert (found["seeders"], found["leechers"], found["completions"]) == want, found


def test_publish_seed_and_get_by_every_name(tmp_path: Path, setup: Setup) -> None:
    deadline = time.monotonic() + 2 * TEST_TIMEOUT
    tracker, client = setup.tracker(tmp_path)
    folder = make_folder(tmp_path / "publisher")

    published = client.json(
        "publish",
        str(folder),
        "-o",
        str(tmp_path / "m.torrent"),
        "--api-key",
        KEY,
        "--publisher",
        "weightless-lab",
        "--category",
        "models",
        "--license",
        "MIT",
    )
    v2, v1 = published["info_hash"], published["v1_info_hash"]
    assert published["torrent"] == str(tmp_path / "m.torrent")
    assert published["entry"]["info_hash"] == v2 and published["entry"]["v1_info_hash"] == v1
    assert published["entry"]["name"] == folder.name
    assert published["entry"]["publisher"] == "weightless-lab"
    assert published["entry"]["size"] == sum(len(b) for b in tree(folder).values())
    assert published["magnet"] == (
        f"magnet:?xt=urn:btih:{v1}&xt=urn:btmh:1220{v2}&dn=m%C3%B6del+weights+v1"
        f"&tr=http%3A%2F%2F127.0.0.1%3A{tracker.port}%2Fannounce"
    )
    # the exact bytes went up
    assert request(tracker.port, "GET", f"/api/registry/torrent?info_hash={v2}") == (
        200,
        (tmp_path / "m.torrent").read_bytes(),
    )

    seeder = client.start("seed", v2, "--data", str(folder.parent))
    client.wait_seeding(seeder, deadline)
    counts(tracker, v2, deadline, (1, 0, 0))

    for n, what in enumerate([v2, v1, published["magnet"], folder.name], start=1):
        out = tmp_path / f"get-{n}"
        # a cache of its own each time: the files are downloaded again, not linked
        result = client.run(
            "get",
            what,
            "-o",
            str(out),
            "--timeout",
            GET_TIMEOUT,
            env={"WL_CACHE": str(tmp_path / f"cache-{n}")},
        )
        path = Path(result.stdout.decode().strip())
        assert path == out.resolve() / folder.name
        assert tree(path) == tree(folder), what
        assert (path / "empty file.txt").read_bytes() == b""
        # the downloader stopped: the seeder is left, one more completion
        counts(tracker, v2, deadline, (1, 0, n))

    assert client.interrupt(seeder) == 0
    assert "stopped seeding" in client.stderr_of(seeder)
    counts(tracker, v2, deadline, (0, 0, 4))


def test_passkeys_in_the_announce_urls(tmp_path: Path, setup: Setup) -> None:
    deadline = time.monotonic() + TEST_TIMEOUT
    tracker, client = setup.tracker(tmp_path, env={"TRACKER_SECRET": SECRET})
    folder = make_folder(tmp_path / "publisher")
    size = sum(len(b) for b in tree(folder).values())
    secret = {"TRACKER_SECRET": SECRET}

    alice = client.run("passkey", "alice", env=secret).stdout.decode().strip()
    assert alice == make_passkey(SECRET, "alice")
    published = client.json(
        "publish",
        str(folder),
        "-o",
        str(tmp_path / "m.torrent"),
        "--api-key",
        KEY,
        "--user-id",
        "alice",
        env=secret,
    )
    # the passkey form clients derive a scrape URL from, HTTP first, both in one tier
    torrent = bdecode((tmp_path / "m.torrent").read_bytes())
    http = f"http://127.0.0.1:{tracker.port}/{alice}/announce".encode()
    udp = f"udp://127.0.0.1:{client.env['WL_UDP_PORT']}/announce/{alice}".encode()
    assert torrent[b"announce"] == http
    assert torrent[b"announce-list"] == [[http, udp]]
    assert alice not in published["magnet"]  # a magnet is shared: no credentials in it

    seeder = client.start(
        "seed", str(tmp_path / "m.torrent"), "--data", str(folder), "--passkey", alice
    )
    client.wait_seeding(seeder, deadline)
    counts(tracker, published["info_hash"], deadline, (1, 0, 0))

    # without a passkey the tracker refuses, and get says so at once in the tracker's words
    refused = client.run("get", folder.name, "-o", str(tmp_path / "no"), ok=False)
    assert refused.returncode == 1
    assert b"this tracker needs a passkey" in refused.stderr

    bob = make_passkey(SECRET, "bob")
    result = client.run(
        "get", published["info_hash"], "-o", str(tmp_path / "bob"), "--passkey", bob
    )
    assert tree(Path(result.stdout.decode().strip())) == tree(folder)
    counts(tracker, published["info_hash"], deadline, (1, 0, 1))
    totals = eventually(
        lambda: get_json(tracker.port, "/api/users/bob", KEY),
        lambda r: r[0] == 200 and r[1]["downloaded"] >= size,
        deadline,
    )
    assert totals[0] == 200 and totals[1]["downloaded"] >= size, totals


def announces(tracker: Tracker, protocol: str) -> float:
    """Announces answered over ``protocol``, from the tracker's own metrics."""
    status, _, body = tracker.get(b"/metrics")
    assert status == 200
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.decode().splitlines()
        if line.startswith("tracker_requests_total{")
        and f'protocol="{protocol}"' in line
        and 'action="announce"' in line
    )


def test_over_udp_only(tmp_path: Path, setup: Setup) -> None:
    deadline = time.monotonic() + TEST_TIMEOUT
    tracker, client = setup.tracker(tmp_path)
    udp_only = {"WL_ANNOUNCE_VIA": "udp"}
    folder = make_folder(tmp_path / "publisher")
    published = client.json(
        "publish", str(folder), "-o", str(tmp_path / "m.torrent"), "--api-key", KEY, env=udp_only
    )
    torrent = bdecode((tmp_path / "m.torrent").read_bytes())
    udp = f"udp://127.0.0.1:{client.env['WL_UDP_PORT']}/announce".encode()
    assert torrent[b"announce"] == udp
    assert torrent.get(b"announce-list", [[udp]]) == [[udp]]

    seeder = client.start(
        "seed", published["info_hash"], "--data", str(folder.parent), env=udp_only
    )
    client.wait_seeding(seeder, deadline)
    result = client.run("get", published["v1_info_hash"], "-o", str(tmp_path / "out"), env=udp_only)
    assert tree(Path(result.stdout.decode().strip())) == tree(folder)
    counts(tracker, published["info_hash"], deadline, (1, 0, 1))
    # every announce (seeder's and getter's, both hashes) went over UDP
    assert announces(tracker, "http") == 0
    assert announces(tracker, "udp") >= 4, tracker.get(b"/metrics")[2].decode()


def test_interrupted_get_resumes_without_downloading_again(tmp_path: Path, setup: Setup) -> None:
    """In-process, to read libtorrent's counters: the first run is stopped a third of the way
    (Ctrl-C in the progress callback), the second fetches only the rest. Then the same with
    the resume file gone (a killed process): the files on disk are re-checked instead."""
    from weightless.client import ClientError, Settings, fetch
    from weightless.client import Tracker as Where

    deadline = time.monotonic() + TEST_TIMEOUT
    tracker, client = setup.tracker(tmp_path, udp=False)
    folder = tmp_path / "publisher" / "big model"
    folder.mkdir(parents=True)
    (folder / "a.bin").write_bytes(bytes(range(256)) * 8192)  # 2 MiB
    (folder / "b.bin").write_bytes(b"\x01" * 1_000_000)
    total = 2 * 1024 * 1024 + 1_000_000
    published = client.json("publish", str(folder), "--api-key", KEY, "--piece-length", "16384")
    seeder = client.start("seed", published["info_hash"], "--data", str(folder.parent))
    client.wait_seeding(seeder, deadline)

    where = Where(f"http://127.0.0.1:{tracker.port}", protocols=("http",))
    slow = Settings(listen="127.0.0.1:0", download_limit=600_000)
    out = tmp_path / "out"
    cache = Cache(client.cache)

    def stop_at(fraction: float) -> Any:
        def on_status(s: Any) -> None:
            if s.total and s.done >= fraction * s.total:
                raise KeyboardInterrupt

        return on_status

    for run in ("resume data", "re-check"):
        with pytest.raises(KeyboardInterrupt):
            fetch(
                published["info_hash"],
                tracker=where,
                output=out,
                settings=slow,
                on_status=stop_at(1 / 3),
                timeout=float(GET_TIMEOUT),
                cache=cache,
            )
        resume = cache.resume_file(published["info_hash"], out.resolve())
        assert resume.exists() and not (out / ".weightless").exists()
        if run == "re-check":
            resume.unlink()
        fetched = fetch(
            published["info_hash"],
            tracker=where,
            output=out,
            settings=Settings(listen="127.0.0.1:0"),
            timeout=float(GET_TIMEOUT),
            cache=cache,
        )
        assert tree(fetched.path) == tree(folder)
        assert fetched.bytes == total
        # what the first run had was not fetched again (a piece or two in flight may be)
        assert fetched.downloaded <= total * 2 / 3 + 64 * 1024, (run, fetched.downloaded)
        assert fetched.downloaded > 0
        # a complete download run again downloads nothing
        again = fetch(
            published["info_hash"],
            tracker=where,
            output=out,
            settings=Settings(listen="127.0.0.1:0"),
            timeout=float(GET_TIMEOUT),
            cache=cache,
        )
        assert again.downloaded == 0
        for p in (out / "big model").iterdir():
            p.unlink()
        (out / "big model").rmdir()
        if resume.exists():
            resume.unlink()
    with pytest.raises(ClientError, match="no registry entry"):
        fetch("no such model", tracker=where, output=out, cache=cache)


def test_ctrl_c_then_run_again(tmp_path: Path, setup: Setup) -> None:
    deadline = time.monotonic() + TEST_TIMEOUT
    tracker, client = setup.tracker(tmp_path, udp=False)
    folder = make_folder(tmp_path / "publisher")
    published = client.json("publish", str(folder), "--api-key", KEY)
    seeder = client.start("seed", published["info_hash"], "--data", str(folder.parent))
    client.wait_seeding(seeder, deadline)
    counts(tracker, published["info_hash"], deadline, (1, 0, 0))

    getter = client.start(
        "get", folder.name, "-o", str(tmp_path / "out"), "--download-limit", "300k"
    )
    # interrupted once it is downloading (it has announced), long before the 300 kB/s limit
    # lets it finish the 1.8 MB
    counts(tracker, published["info_hash"], deadline, (1, 1, 0))
    assert client.interrupt(getter) == 130
    assert "run the same command again to resume" in client.stderr_of(getter)
    out = (tmp_path / "out").resolve()
    assert Cache(client.cache).resume_file(published["info_hash"], out).exists()
    result = client.run("get", folder.name, "-o", str(tmp_path / "out"))
    assert tree(Path(result.stdout.decode().strip())) == tree(folder)


def test_web_seed_alone(tmp_path: Path, setup: Setup) -> None:
    tracker, client = setup.tracker(tmp_path, udp=False)
    folder = make_folder(tmp_path / "hub")
    web, port = web_server(folder.parent, tmp_path)
    setup.procs.append(web)
    published = client.json(
        "publish", str(folder), "--api-key", KEY, "--web-seed", f"http://127.0.0.1:{port}/"
    )
    torrent = bdecode((tmp_path / published["torrent"]).read_bytes())
    assert torrent[b"url-list"] in (
        f"http://127.0.0.1:{port}/".encode(),
        [f"http://127.0.0.1:{port}/".encode()],
    )
    # no seeder anywhere: only the HTTP server has the data
    assert entry(tracker, published["info_hash"])["seeders"] == 0
    result = client.run(
        "get", published["info_hash"], "-o", str(tmp_path / "out"), "--timeout", GET_TIMEOUT
    )
    assert tree(Path(result.stdout.decode().strip())) == tree(folder)


def test_metadata_from_peers_when_the_registry_has_no_torrent(tmp_path: Path, setup: Setup) -> None:
    deadline = time.monotonic() + TEST_TIMEOUT
    tracker, client = setup.tracker(tmp_path, udp=False)
    folder = make_folder(tmp_path / "publisher")
    created = client.json("create", str(folder), "-o", str(tmp_path / "m.torrent"))
    # registered from JSON only: the registry knows the hashes, not the file
    body = json.dumps(
        {
            "info_hash": created["info_hash"],
            "v1_info_hash": created["v1_info_hash"],
            "name": "no file",
        }
    ).encode()
    status, _ = request(
        tracker.port,
        "POST",
        "/api/registry",
        body,
        {"Content-Type": "application/json", "X-Weightless-Key": KEY},
    )
    assert status == 201
    assert (
        request(tracker.port, "GET", f"/api/registry/torrent?info_hash={created['info_hash']}")[0]
        == 404
    )
    seeder = client.start("seed", str(tmp_path / "m.torrent"), "--data", str(folder.parent))
    client.wait_seeding(seeder, deadline)
    result = client.run("get", "no file", "-o", str(tmp_path / "out"), "--timeout", GET_TIMEOUT)
    assert tree(Path(result.stdout.decode().strip())) == tree(folder)


def test_v1_and_v2_announcers_are_one_swarm(tmp_path: Path, setup: Setup) -> None:
    """A v1-only client (rtorrent, Transmission 3) announces the v1 hash of the hybrid torrent
    ``create`` made, a v2 client the truncated v2 hash: both find the one seeder, and the
    registry counts them in one entry."""
    deadline = time.monotonic() + TEST_TIMEOUT
    tracker, client = setup.tracker(tmp_path, udp=False)
    folder = make_folder(tmp_path / "publisher")
    published = client.json("publish", str(folder), "--api-key", KEY)
    seeder = client.start("seed", published["info_hash"], "--data", str(folder.parent))
    client.wait_seeding(seeder, deadline)
    counts(tracker, published["info_hash"], deadline, (1, 0, 0))
    for n, digest in enumerate(
        [bytes.fromhex(published["v1_info_hash"]), bytes.fromhex(published["info_hash"])[:20]]
    ):
        reply = tracker.announce(announce_path(digest, port=7000 + n, left=1000, compact=0))
        seeders = [p for p in reply[b"peers"] if p[b"port"] not in (7000, 7001)]
        assert [p[b"ip"] for p in seeders] == [b"127.0.0.1"], reply
        assert reply[b"complete"] == 1
    counts(tracker, published["info_hash"], deadline, (1, 2, 0))


def test_user_mistakes_are_one_line(tmp_path: Path, setup: Setup) -> None:
    tracker, client = setup.tracker(tmp_path, udp=False)
    folder = make_folder(tmp_path / "publisher")
    (tmp_path / "bad.torrent").write_bytes(b"d4:infoi1ee")

    def fails(*args: str, says: str, env: dict[str, str] | None = None) -> None:
        result = client.run(*args, env=env, ok=False)
        err = result.stderr.decode()
        assert result.returncode == 1, err
        assert says in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err

    def misused(*args: str, says: str) -> None:
        """Usage errors: click's status 2, the usage line and one error line."""
        result = client.run(*args, ok=False)
        err = result.stderr.decode()
        assert result.returncode == 2, err
        assert says in err.strip().splitlines()[-1] and "Traceback" not in err, err

    fails("publish", str(folder), "--api-key", "wrong", says="HTTP 401")
    fails(
        "publish", str(tmp_path / "bad.torrent"), "--api-key", KEY, says="not a valid torrent file"
    )
    fails("get", "nobody's model", says="no registry entry")
    fails("get", "0" * 64, says="no registry entry")
    fails("get", "magnet:?xt=urn:btih:zz", says="magnet")
    fails("search", "x", "--tracker", "http://127.0.0.1:1", says="cannot reach the tracker")
    fails("get", "x", "--tracker", "ftp://x", says="tracker URL")
    fails("passkey", "alice", says="TRACKER_SECRET")
    fails("passkey", "not a user", says="user id", env={"TRACKER_SECRET": "s"})
    misused("create", str(tmp_path / "missing"), says="does not exist")
    misused("get", "x", "--timeout", "-1", says="--timeout")
    fails("create", str(folder), "--piece-length", "20000", says="power of two")
    fails("get", "x", "--download-limit", "fast", says="--download-limit")
    fails("get", "x", "--udp-port", "99999", says="--udp-port")

    # entries of one name by two publishers
    for digest, publisher in (("a" * 64, "ann"), ("b" * 64, "bob")):
        body = json.dumps({"info_hash": digest, "name": "twins", "publisher": publisher}).encode()
        headers = {"Content-Type": "application/json", "X-Weightless-Key": KEY}
        assert request(tracker.port, "POST", "/api/registry", body, headers)[0] == 201
    fails("get", "twins", says="name one: ann/twins, bob/twins")

    # the data a seed is given is not the torrent's
    published = client.json("publish", str(folder), "--api-key", KEY)
    other = make_folder(tmp_path / "other")
    fails("seed", published["info_hash"], "--data", str(other.parent), says="does not match")
    # a file where the download needs a folder: the write error, in one line
    blocked = tmp_path / "blocked"
    (blocked / folder.name).mkdir(parents=True)
    (blocked / folder.name / "sub dir").write_bytes(b"in the way")
    seeder = client.start("seed", published["info_hash"], "--data", str(folder.parent))
    client.wait_seeding(seeder, time.monotonic() + TEST_TIMEOUT)
    fails(
        "get", published["info_hash"], "-o", str(blocked), "--timeout", GET_TIMEOUT, says="sub dir"
    )
    # nobody seeds what the timeout waits for
    client.interrupt(seeder)
    fails(
        "get",
        published["info_hash"],
        "-o",
        str(tmp_path / "late"),
        "--timeout",
        "2",
        says="timed out",
    )


def test_registry_json_of_torrent_data_matches(tmp_path: Path, setup: Setup) -> None:
    """create's printed hashes are the hashes the server computes from the uploaded bytes."""
    tracker, client = setup.tracker(tmp_path, udp=False)
    folder = make_folder(tmp_path / "publisher")
    created = client.json("create", str(folder), "-o", str(tmp_path / "m.torrent"))
    data = (tmp_path / "m.torrent").read_bytes()
    body = json.dumps(
        {
            "info_hash": created["info_hash"],
            "v1_info_hash": created["v1_info_hash"],
            "name": "x",
            "torrent_data": base64.b64encode(data).decode(),
        }
    ).encode()
    headers = {"Content-Type": "application/json", "X-Weightless-Key": KEY}
    assert request(tracker.port, "POST", "/api/registry", body, headers)[0] == 201
    ti = lt.torrent_info(data)
    assert ti.info_hashes().v2.to_bytes().hex() == created["info_hash"]


def test_publish_seed_then_get_seed(tmp_path: Path, setup: Setup) -> None:
    """``publish --seed`` seeds what it just hashed; ``get --seed`` goes on seeding once the
    data is complete, so a third peer can fetch from either."""
    deadline = time.monotonic() + TEST_TIMEOUT
    tracker, client = setup.tracker(tmp_path, udp=False)
    folder = make_folder(tmp_path / "publisher")
    publisher = client.start("publish", str(folder), "--api-key", KEY, "--seed", "--json")
    client.wait_seeding(publisher, deadline)
    assert publisher.stdout is not None
    published = json.loads(publisher.stdout.readline())
    v2 = published["info_hash"]
    counts(tracker, v2, deadline, (1, 0, 0))

    second = client.start("get", v2, "-o", str(tmp_path / "second"), "--seed", "--json")
    client.wait_seeding(second, deadline)
    assert second.stdout is not None
    fetched = json.loads(second.stdout.readline())
    assert fetched["info_hash"] == v2 and fetched["bytes"] == published["entry"]["size"]
    assert tree(Path(fetched["path"])) == tree(folder)
    counts(tracker, v2, deadline, (2, 0, 1))

    assert client.interrupt(publisher) == 0
    counts(tracker, v2, deadline, (1, 0, 1))
    # another machine (a cache of its own): it downloads from the one seeder left
    result = client.run(
        "get", v2, "-o", str(tmp_path / "third"), env={"WL_CACHE": str(tmp_path / "cache-3")}
    )
    assert tree(Path(result.stdout.decode().strip())) == tree(folder)
    assert client.interrupt(second) == 0
    counts(tracker, v2, deadline, (0, 0, 2))
