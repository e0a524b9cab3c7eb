"""The pure parts of weightless.client.http: what an origin is (RFC 6454: scheme, host and
port, the default port filled in), and the deadline each socket operation is held to."""

from __future__ import annotations

import time

import httpcore
import httpx
import pytest

from weightless.client.http import Answer, _Clock, origin


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("http://t.example/api", "http://t.example:80/other?x=1", True),
        ("https://T.Example/api", "https://t.example:443/", True),
        ("http://t.example/", "https://t.example/", False),  # scheme
        ("http://t.example:8080/", "http://t.example:8081/", False),  # port
        ("http://t.example/", "http://evil.example/", False),  # host
        ("http://t.example/", "http://t.example.evil.example/", False),
        ("http://127.0.0.1:8080/", "http://localhost:8080/", False),  # names, not addresses
        ("http://[::1]:8080/", "http://[::1]:8080/x", True),
    ],
)
def test_origin(a: str, b: str, same: bool) -> None:
    assert (origin(httpx.URL(a)) == origin(httpx.URL(b))) is same


def test_each_operation_gets_only_the_time_left() -> None:
    clock = _Clock()
    assert clock.left(30.0, httpcore.ReadTimeout) == 30.0  # no exchange under way: as asked
    clock.deadline = time.monotonic() + 2
    left = clock.left(30.0, httpcore.ReadTimeout)
    assert left is not None and 1.5 < left <= 2
    assert clock.left(0.5, httpcore.ReadTimeout) == 0.5
    clock.deadline = time.monotonic() - 0.001
    with pytest.raises(httpcore.ReadTimeout):
        clock.left(30.0, httpcore.ReadTimeout)
    with pytest.raises(httpcore.ConnectTimeout):
        clock.left(None, httpcore.ConnectTimeout)


@pytest.mark.parametrize(
    "body",
    [b"NaN", b"[Infinity]", b'{"a": -Infinity}', b"1e999", b"[-1E400]", b'{"n": [1, NaN]}'],
)
def test_numbers_json_cannot_carry_are_not_json(body: bytes) -> None:
    with pytest.raises(ValueError):
        Answer(200, "OK", httpx.Headers(), body).json()


def test_large_finite_numbers_and_duplicate_keys_are_read() -> None:
    answer = Answer(200, "OK", httpx.Headers(), b'{"a": 1e308, "b": 1, "b": 2, "c": 99999999999}')
    assert answer.json() == {"a": 1e308, "b": 2, "c": 99999999999}
