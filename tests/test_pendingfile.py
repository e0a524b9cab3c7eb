from pathlib import Path

from weightless import pendingfile
from weightless.tracker.accounting import PendingWrites


def test_writes_kept_at_a_stop_are_queued_again_once(tmp_path: Path) -> None:
    path = str(tmp_path / "weightless.pending")
    left = PendingWrites()
    left.complete("ab" * 32)
    left.transfer("alice", 10, 20)
    pendingfile.save(left, path)
    pendingfile.save(PendingWrites(), path)  # nothing queued: no file

    queue = PendingWrites()
    queue.transfer("alice", 1, 1)
    pendingfile.restore(queue, path)
    assert queue.completions == {"ab" * 32: 1}
    assert queue.traffic == {"alice": [11, 21]}
    assert list(tmp_path.iterdir()) == []  # claimed and removed: never counted twice
    again = PendingWrites()
    pendingfile.restore(again, path)
    assert not again


def test_an_unreadable_file_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "weightless.pending.1").write_text("{not json")
    queue = PendingWrites()
    pendingfile.restore(queue, str(tmp_path / "weightless.pending"))
    assert not queue
