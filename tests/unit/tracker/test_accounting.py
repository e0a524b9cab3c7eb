from weightless.tracker.accounting import Accounting, PendingWrites

SWARM, ADDR = b"s" * 20, b"a" * 6


def test_deltas_from_running_totals() -> None:
    pending = PendingWrites()
    acc = Accounting(pending, max_age=100)
    acc.announce("u", SWARM, ADDR, 0, 0, True, False, 0)
    acc.announce("u", SWARM, ADDR, 10, 20, False, False, 1)
    acc.announce("u", SWARM, ADDR, 15, 20, False, False, 2)
    assert pending.traffic == {"u": [15, 20]}


def test_first_sight_mid_session_is_only_a_baseline() -> None:
    """After a tracker restart the client's totals were already counted once."""
    pending = PendingWrites()
    acc = Accounting(pending, max_age=100)
    acc.announce("u", SWARM, ADDR, 500, 500, False, False, 0)
    assert not pending
    acc.announce("u", SWARM, ADDR, 600, 500, False, False, 1)
    assert pending.traffic == {"u": [100, 0]}


def test_counter_reset_counts_from_zero() -> None:
    pending = PendingWrites()
    acc = Accounting(pending, max_age=100)
    acc.announce("u", SWARM, ADDR, 0, 0, True, False, 0)
    acc.announce("u", SWARM, ADDR, 100, 100, False, False, 1)
    acc.announce("u", SWARM, ADDR, 5, 7, False, False, 2)  # restarted without "started"
    assert pending.traffic == {"u": [105, 107]}


def test_expiry_forgets_old_peers_oldest_first() -> None:
    acc = Accounting(PendingWrites(), max_age=10)
    for i in range(5):
        acc.announce("u", SWARM, bytes([i]) * 6, 0, 0, True, False, i)
    acc.expire(now=13.5, budget=100)
    assert len(acc) == 1
    acc.expire(now=100, budget=0)
    assert len(acc) == 1


def test_take_and_restore_keep_everything() -> None:
    pending = PendingWrites()
    pending.complete("h")
    pending.transfer("u", 1, 2)
    batch = pending.take()
    assert not pending
    pending.complete("h")
    pending.transfer("u", 10, 20)
    pending.restore(batch)
    assert pending.completions == {"h": 2}
    assert pending.traffic == {"u": [11, 22]}
