"""``weightless token PUBLISHER``: the publisher token alone on stdout, with or without --json;
the tracker accepts it as the X-Weightless-Key of that publisher's writes."""

from __future__ import annotations

import hashlib
import hmac

from .kit import error_line, help_text, invoke, ok


def expected(publisher: str, key: str) -> str:
    message = f"publisher:{publisher}".encode()
    return f"{publisher}.{hmac.new(key.encode(), message, hashlib.sha256).hexdigest()}"


def test_help() -> None:
    text = help_text("token")
    assert "--secret KEY" in text and "REGISTRY_KEY" in text


def test_prints_publisher_dot_hmac() -> None:
    assert ok(invoke("token", "acme", "--secret", "reg")).stdout == expected("acme", "reg") + "\n"


def test_the_key_from_the_environment_and_json_prints_it_alone() -> None:
    result = ok(invoke("token", "Org Team", "--json", env={"REGISTRY_KEY": "k"}))
    assert result.stdout == expected("Org Team", "k") + "\n"


def test_a_token_is_not_the_passkey_of_the_same_name() -> None:
    token = ok(invoke("token", "alice", "--secret", "s")).stdout
    passkey = ok(invoke("passkey", "alice", "--secret", "s")).stdout
    assert token != passkey


def test_without_a_key() -> None:
    assert error_line(invoke("token", "acme", env={"REGISTRY_KEY": ""})) == (
        "Error: a publisher token needs the registry key: set REGISTRY_KEY or give --secret"
    )


def test_an_empty_publisher() -> None:
    assert error_line(invoke("token", "", "--secret", "s")).startswith("Error: publisher ")
