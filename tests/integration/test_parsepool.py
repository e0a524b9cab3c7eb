"""Uploads are parsed in a process of their own: real child processes, a real reactor, and the
tracker itself (one process and --workers 2) parsing, refusing when full, and leaving no
child behind when it stops."""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import pytest_twisted
from registry_kit import make_torrent
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from integration.process import Tracker
from integration.waiting import wait_for
from weightless.registry.entries import Invalid, parse_upload
from weightless.registry.parsepool import NICENESS, Busy, ParsePool

# a maximum-size hostile body: millions of tiny bencode values, seconds of parsing
HOSTILE = b"d4:infol" + b"i1e" * (1 << 20) + b"ee"


def failure_of(d: Deferred[object]) -> BaseException:
    found: list[BaseException] = []
    d.addCallbacks(lambda r: pytest.fail(f"succeeded: {r!r}"), lambda f: found.append(f.value))
    assert found, "not failed at once"
    return found[0]


@pytest_twisted.ensureDeferred
async def test_a_parse_runs_in_a_child_at_a_lower_priority() -> None:
    pool = ParsePool(reactor)
    try:
        child = await pool.run(os.getpid)
        assert child != os.getpid()
        assert await pool.run(os.nice, 0) == os.nice(0) + NICENESS
        assert await pool.run(os.getpid) == child  # the same child, kept
    finally:
        await pool.stopService()


@pytest_twisted.ensureDeferred
async def test_what_a_parse_refuses_comes_back_as_it_was_raised() -> None:
    pool = ParsePool(reactor)
    try:
        with pytest.raises(Invalid, match="invalid torrent"):
            await pool.run(parse_upload, b"d4:infoi1ee", {})
        with pytest.raises(Invalid, match=r"the body must be a \.torrent file"):
            await pool.run(parse_upload, b"", {})
        assert await pool.run(sum, [1, 2, 3]) == 6  # and it still parses
    finally:
        await pool.stopService()


@pytest_twisted.ensureDeferred
async def test_beyond_the_bound_a_parse_is_refused_at_once_not_queued() -> None:
    pool = ParsePool(reactor, processes=1, waiting=2)
    try:
        held = [pool.run(time.sleep, 0.5) for _ in range(3)]
        for _ in range(3):
            error = failure_of(pool.run(parse_upload, HOSTILE, {}))
            assert isinstance(error, Busy) and error.retry_after > 0
        assert pool.in_flight == 3
        for d in held:
            await d
        assert pool.in_flight == 0
        assert await pool.run(sum, [2, 2]) == 4  # room again
    finally:
        await pool.stopService()


@pytest_twisted.ensureDeferred
async def test_a_child_that_dies_is_replaced() -> None:
    pool = ParsePool(reactor)
    try:
        first = await pool.run(os.getpid)
        parse = pool.run(time.sleep, 5)
        os.kill(first, signal.SIGKILL)
        assert isinstance(await parse.addErrback(lambda f: f.value), Busy)
        for _ in range(50):  # the broken executor may refuse once more before it is noticed
            try:
                second = await pool.run(os.getpid)
                break
            except Busy:
                await deferLater(reactor, 0.05, lambda: None)
        assert second != first
        assert pool.in_flight == 0
    finally:
        await pool.stopService()


@pytest_twisted.ensureDeferred
async def test_stopping_leaves_no_child_and_cancels_what_waits() -> None:
    pool = ParsePool(reactor, processes=1, waiting=4)
    pool.startService()
    child = await pool.run(os.getpid)
    parses = [pool.run(time.sleep, 0.3) for _ in range(5)]
    await pool.stopService()
    ends = [await d.addErrback(lambda f: f.value) for d in parses]
    assert isinstance(ends[-1], Busy)  # those still waiting are cancelled
    assert all(end is None or isinstance(end, Busy) for end in ends)
    assert not alive(child)


# -- the tracker


def upload(port: int, body: bytes) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(
            "POST", "/api/registry/torrent", body, {"Content-Type": "application/x-bittorrent"}
        )
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def alive(pid: int) -> bool:
    fields = stat(pid)
    return fields is not None and fields[0] != "Z"


def descendants(pid: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := stat(int(entry.name))) is not None:
            parents[int(entry.name)] = int(fields[1])
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        found += children
        todo += children
    return found


def niceness(pid: int) -> int | None:
    fields = stat(pid)
    return None if fields is None else int(fields[16])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_tracker_parses_uploads_in_children_and_leaves_none_behind(
    new_tracker: Callable[..., Tracker], tmp_path: Path, workers: str
) -> None:
    tracker = new_tracker("--workers", workers, "--rate-limit", "0").start()
    assert tracker.proc is not None
    torrent = make_torrent(tmp_path, "model.bin")
    status, _, body = upload(tracker.port, torrent)
    assert status == 201, body
    status, _, body = upload(tracker.port, HOSTILE)
    assert status == 400 and b"info" in body, body
    # while hostile parses fill every worker's bound, others are refused at once, as JSON
    answers: list[tuple[int, dict[str, str], bytes]] = []
    threads = [
        threading.Thread(target=lambda: answers.append(upload(tracker.port, HOSTILE)))
        for _ in range(8 * int(workers))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == len(threads)
    busy = [a for a in answers if a[0] == 503]
    assert busy and all(a[1].get("Retry-After") for a in busy), answers
    assert all(a[2].startswith(b'{"error": ') for a in answers)
    assert {a[0] for a in answers} <= {400, 503}
    parsers = [p for p in descendants(tracker.proc.pid) if niceness(p) == NICENESS]
    assert len(parsers) == int(workers)
    tracker.stop()
    wait_for(
        lambda: not any(alive(p) for p in parsers),
        lambda: "parse children still running after the tracker stopped",
        10,
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_killed_tracker_leaves_no_parser_behind(
    new_tracker: Callable[..., Tracker], workers: str
) -> None:
    """SIGKILL, as the OOM killer or a careless operator sends it: no cleanup runs, and the
    parse children (whose parent is the forkserver) must still go."""
    tracker = new_tracker("--workers", workers).start()
    assert tracker.proc is not None
    pid = tracker.proc.pid
    wait_for(  # started with the tracker (a few seconds later), not at the first upload
        lambda: len([p for p in descendants(pid) if niceness(p) == NICENESS]) == int(workers),
        "the parse children to start",
    )
    below = descendants(pid)
    tracker.proc.kill()
    tracker.proc.wait()
    wait_for(
        lambda: not any(alive(p) for p in below),
        lambda: f"processes left behind: {[p for p in below if alive(p)]}",
        20,
    )
