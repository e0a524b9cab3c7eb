"""What a worker is told by its supervisor (weightless.cluster.seat): one environment
variable that round-trips, the shared files' paths, and leaving with the supervisor."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytest

from weightless.cluster import seat as seat_module
from weightless.cluster.seat import ENV, Seat

SEAT = Seat(
    index=2,
    workers=4,
    directory="/tmp/weightless-x",
    http_fd=5,
    http_family=10,
    udp_fd=None,
    udp_family=10,
    secret="ab" * 16,
    supervisor=1234,
)


def test_round_trips_through_the_environment() -> None:
    env = {ENV: SEAT.to_env(), "OTHER": "x"}
    assert Seat.from_env(env) == SEAT
    with_udp = Seat(**{**json.loads(SEAT.to_env()), "udp_fd": 6})
    assert Seat.from_env({ENV: with_udp.to_env()}) == with_udp


def test_no_seat_without_the_variable() -> None:
    assert Seat.from_env({}) is None
    assert Seat.from_env({ENV: ""}) is None


def test_a_seat_from_another_version_is_refused_loudly() -> None:
    raw = json.loads(SEAT.to_env())
    raw["surprise"] = 1
    with pytest.raises(TypeError):
        Seat.from_env({ENV: json.dumps(raw)})


def test_the_shared_files_are_in_the_supervisors_folder() -> None:
    assert SEAT.limiter_path == "/tmp/weightless-x/ratelimit"
    assert SEAT.connections_path == "/tmp/weightless-x/connections"


class FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def prctl(self, *args: Any) -> int:
        self.calls.append(args)
        return 0


@pytest.fixture
def libc(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    fake = FakeLibc()
    monkeypatch.setattr(seat_module.ctypes, "CDLL", lambda *a, **k: fake)
    monkeypatch.setattr(seat_module.sys, "platform", "linux")
    return fake


def test_asks_for_sigterm_when_the_supervisor_dies(
    libc: FakeLibc, monkeypatch: pytest.MonkeyPatch
) -> None:
    exits: list[int] = []
    monkeypatch.setattr(seat_module.os, "_exit", exits.append)
    seat_module.die_with_supervisor(os.getppid())
    assert libc.calls == [(1, signal.SIGTERM, 0, 0, 0)]
    assert exits == []


def test_leaves_at_once_when_the_supervisor_is_already_gone(
    libc: FakeLibc, monkeypatch: pytest.MonkeyPatch
) -> None:
    exits: list[int] = []
    monkeypatch.setattr(seat_module.os, "_exit", exits.append)
    seat_module.die_with_supervisor(os.getppid() + 1_000_000)
    assert exits == [1]


def test_elsewhere_than_linux_only_the_parent_check(
    libc: FakeLibc, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(seat_module.sys, "platform", "darwin")
    exits: list[int] = []
    monkeypatch.setattr(seat_module.os, "_exit", exits.append)
    seat_module.die_with_supervisor(os.getppid())
    assert libc.calls == [] and exits == []
