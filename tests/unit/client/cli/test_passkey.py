"""``weightless passkey USER_ID``: the passkey alone on stdout, with or without --json."""

from __future__ import annotations

import hashlib
import hmac

from .kit import error_line, help_text, invoke, ok


def expected(user: str, secret: str) -> str:
    return f"{user}.{hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest()}"


def test_help() -> None:
    assert "--secret SECRET" in help_text("passkey")


def test_prints_user_id_dot_hmac() -> None:
    assert ok(invoke("passkey", "alice", "--secret", "s3cret")).stdout == (
        expected("alice", "s3cret") + "\n"
    )


def test_the_secret_from_the_environment_and_json_prints_it_alone() -> None:
    result = ok(invoke("passkey", "bob", "--json", env={"TRACKER_SECRET": "k"}))
    assert result.stdout == expected("bob", "k") + "\n"


def test_without_a_secret() -> None:
    assert error_line(invoke("passkey", "alice")) == (
        "Error: a passkey needs the tracker's secret: set TRACKER_SECRET or give --secret"
    )


def test_a_bad_user_id() -> None:
    line = error_line(invoke("passkey", "al ice", "--secret", "s"))
    assert line == "Error: user id 'al ice' must be 1-64 characters of A-Z a-z 0-9 _ -"
