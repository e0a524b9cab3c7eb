"""The PostgreSQL server the tests use: WEIGHTLESS_TEST_DATABASE_URL when set, else the local
server (127.0.0.1:5432, trust auth, database test), else a throwaway cluster made with initdb
and pg_ctl. Without any, PostgreSQL tests skip loudly, or fail when
WEIGHTLESS_REQUIRE_POSTGRES=1 (as CI sets it)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from psycopg2.extensions import make_dsn

LOCAL = "postgresql://postgres@127.0.0.1:5432/test"
MISSING: list[str] = []  # why PostgreSQL tests did not run, for the summary


def reachable(dsn: str) -> str | None:
    """None when ``dsn`` answers, else why not."""
    try:
        psycopg2.connect(dsn, connect_timeout=3).close()
    except psycopg2.Error as e:
        return (str(e).strip().splitlines() or [type(e).__name__])[0]
    return None


class PostgresServer:
    def __init__(self) -> None:
        self._stop: Callable[[], Any] | None = None
        self._restart: Callable[[], Any] = lambda: None

    def find(self) -> str | None:
        given = os.environ.get("WEIGHTLESS_TEST_DATABASE_URL")
        dsn = None
        if given:
            why = reachable(given)
            if why is None:
                dsn = given
            else:
                MISSING.append(f"WEIGHTLESS_TEST_DATABASE_URL={given}: {why}")
        elif reachable(LOCAL) is None:
            dsn = LOCAL
        else:
            try:
                dsn = self._throwaway()
            except Exception as e:
                MISSING.append(f"no server at {LOCAL} and no throwaway cluster: {e}")
        if dsn is not None:
            _shared_extensions(dsn)
        return dsn

    def _throwaway(self) -> str:
        """A cluster of our own, run as a non-root user (postgres refuses root), in a folder
        that user can reach (pytest's own temporary folders are private to root)."""
        initdb = shutil.which("initdb") or max(
            glob.glob("/usr/lib/postgresql/*/bin/initdb"), default=None
        )
        if initdb is None:
            raise RuntimeError("no initdb on PATH or in /usr/lib/postgresql/*/bin")
        pg_ctl = str(Path(initdb).with_name("pg_ctl"))
        tmp = Path(tempfile.mkdtemp(prefix="weightless-pg-"))
        data = tmp / "data"
        demote = None
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres" if _user_exists("postgres") else "nobody")
            os.chown(tmp, user.pw_uid, user.pw_gid)

            def demote() -> None:
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]

        def run(*args: str) -> None:
            done = subprocess.run(
                args, preexec_fn=demote, cwd=tmp, capture_output=True, text=True, timeout=120
            )
            if done.returncode:
                raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr.strip()[-300:]}")

        def stop() -> None:
            run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
            shutil.rmtree(tmp, ignore_errors=True)

        run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust")
        options = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(pg_ctl, "-D", str(data), "-o", options, "-w", "-l", str(tmp / "log"), "start")
        self._stop = stop
        log = str(tmp / "log")
        self._restart = lambda: run(
            pg_ctl, "-D", str(data), "-m", "fast", "-w", "-l", log, "restart"
        )
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def restart(self) -> None:
        """Restart a throwaway cluster: every client connection is cut."""
        self._restart()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _shared_extensions(dsn: str) -> None:
    """pg_trgm in public, shared by every test schema (one in a test schema would be dropped
    with it, under the feet of tests running beside it)."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur, contextlib.suppress(psycopg2.Error):
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    conn.close()


def skip_or_fail(why: str = "") -> None:
    reason = "PostgreSQL tests SKIPPED: " + (why or (MISSING[0] if MISSING else "no server"))
    if os.environ.get("WEIGHTLESS_REQUIRE_POSTGRES") == "1":
        pytest.fail(reason + " (and WEIGHTLESS_REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


@contextlib.contextmanager
def fresh_schema(server: str) -> Iterator[str]:
    """A DSN whose search_path starts with a new schema, dropped afterwards (CASCADE)."""
    schema = "wl_test_" + uuid.uuid4().hex[:12]
    _admin(server, f"CREATE SCHEMA {schema}")
    try:
        yield make_dsn(server, options=f"-c search_path={schema},public")
    finally:
        _admin(server, f"DROP SCHEMA {schema} CASCADE")


def _admin(server: str, statement: str) -> None:
    conn = psycopg2.connect(server)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()
