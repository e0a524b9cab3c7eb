"""Shared test set-up: pytest-twisted's reactor, and a check that fails a test when a Deferred
error went unhandled (pytest, unlike trial, would otherwise let it pass silently)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pgserver
import pytest
import redisserver
from deferred_check import UnhandledDeferredErrors
from registry_kit import server, start  # noqa: F401 (fixtures: registry API servers on store_url)


@pytest.fixture(autouse=True)
def no_unhandled_deferred_errors() -> Iterator[None]:
    """Fails the test if a Deferred error went unhandled in it (see tests/deferred_check.py)."""
    with UnhandledDeferredErrors():
        yield


# -- registry databases: store and API tests run on SQLite and on a real PostgreSQL ------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str | None]:
    """The session's PostgreSQL (see tests/pgserver.py), or None."""
    postgres = pgserver.PostgresServer()
    yield postgres.find()
    postgres.stop()


@pytest.fixture
def postgres_dsn(postgres_server: str | None) -> Iterator[str]:
    """A DSN whose search_path is a fresh schema of its own, dropped after the test."""
    if postgres_server is None:
        pgserver.skip_or_fail()
    assert postgres_server is not None
    with pgserver.fresh_schema(postgres_server) as dsn:
        yield dsn


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a registry store lives: a test that uses it runs once per backend."""
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "registry.db")
    dsn: str = request.getfixturevalue("postgres_dsn")
    return dsn


# -- swarm stores: the same behaviour in memory and in a real Redis ------------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[redisserver.RedisServer]:
    """The session's redis-server on a free port (skips, or fails under
    WEIGHTLESS_REQUIRE_REDIS, without one)."""
    redis = redisserver.RedisServer()
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
def redis_url(redis_server: redisserver.RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    return redis_server.url


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if redisserver.MISSING:
        line = "WARNING: Redis tests did not run: " + redisserver.MISSING[0]
        terminalreporter.write_line(line, red=True, bold=True)
    if pgserver.MISSING:
        line = "WARNING: PostgreSQL tests did not run: " + pgserver.MISSING[0]
        terminalreporter.write_line(line, red=True, bold=True)
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        if "browser tests SKIPPED" in reason:
            line = "WARNING: " + reason.removeprefix("Skipped: ")
            terminalreporter.write_line(line, red=True, bold=True)
            break
