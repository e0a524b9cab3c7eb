import os
from pathlib import Path

from weightless.state import pendingfile
from weightless.tracker.accounting import Accounting, PendingWrites


def test_writes_kept_at_a_stop_are_queued_again_once(tmp_path: Path) -> None:
    path = str(tmp_path / "weightless.pending")
    left = PendingWrites()
    left.complete("ab" * 32)
    left.transfer("alice", 10, 20)
    pendingfile.save_pending(left, path)
    pendingfile.save_pending(PendingWrites(), path)  # nothing queued: no file

    queue = PendingWrites()
    queue.transfer("alice", 1, 1)
    pendingfile.restore_pending(queue, path)
    assert queue.completions == {"ab" * 32: 1}
    assert queue.traffic == {"alice": [11, 21]}
    assert list(tmp_path.iterdir()) == []  # claimed and removed: never counted twice
    again = PendingWrites()
    pendingfile.restore_pending(again, path)
    assert not again


def test_an_unreadable_file_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "weightless.pending.1").write_text("{not json")
    queue = PendingWrites()
    pendingfile.restore_pending(queue, str(tmp_path / "weightless.pending"))
    assert not queue
    assert [p.name for p in tmp_path.iterdir()] == ["weightless.pending.1.corrupt"]


def test_accounting_baselines_survive_a_restart(tmp_path: Path) -> None:
    """Traffic between the last announce before a restart and the first after it counts."""
    path = str(tmp_path / "weightless.pending-baselines")
    before = Accounting(PendingWrites(), max_age=3600)
    before.announce("alice", b"s" * 20, b"a" * 6, 0, 0, True, False, 10.0)
    before.announce("alice", b"s" * 20, b"a" * 6, 100, 200, False, False, 20.0)
    pendingfile.save_baselines(before, path)

    pending = PendingWrites()
    after = Accounting(pending, max_age=3600)
    pendingfile.restore_baselines(after, path)
    after.announce("alice", b"s" * 20, b"a" * 6, 150, 260, False, False, 30.0)
    assert pending.traffic == {"alice": [50, 60]}
    assert list(tmp_path.iterdir()) == []


def test_with_several_workers_each_takes_the_baselines_of_the_swarms_it_owns(
    tmp_path: Path,
) -> None:
    """Whatever process kept a baseline, the worker owning the peer's swarm at the next start
    (the one its announces reach) counts from it; the worker count may change."""
    path = str(tmp_path / "weightless.pending-baselines")
    swarms = [bytes([i]) * 20 for i in range(6)]
    for half in (swarms[:3], swarms[3:]):  # two workers of the last start
        kept = Accounting(PendingWrites(), max_age=3600)
        for s in half:
            kept.announce("alice", s, b"a" * 6, 0, 0, True, False, 10.0)
            kept.announce("alice", s, b"a" * 6, 100, 200, False, False, 20.0)
        pendingfile.save_baselines(kept, path)
        (tmp_path / f"weightless.pending-baselines.{os.getpid()}").rename(
            tmp_path / f"weightless.pending-baselines.{len(list(tmp_path.iterdir()))}"
        )

    def owner(key: bytes) -> int:
        return key[0] % 3

    pendingfile.split_baselines(path, 3, owner)
    for index in range(3):
        pending = PendingWrites()
        worker = Accounting(pending, max_age=3600)
        pendingfile.restore_baselines(worker, pendingfile.worker_baselines(path, index))
        assert sorted(bytes.fromhex(b[1]) for b in worker.baselines()) == [
            s for s in swarms if owner(s) == index
        ]
        for s in swarms:
            if owner(s) == index:
                worker.announce("alice", s, b"a" * 6, 150, 260, False, False, 30.0)
        assert pending.traffic == {"alice": [100, 120]}
    assert list(tmp_path.iterdir()) == []
