"""``weightless verify TORRENT_OR_HASH`` with `api.verify` replaced by a fake: what it prints,
--json, and the exit status (0 only for a valid signature)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from registry_kit import make_torrent
from signature_kit import SMALL_ORDER_KEYS, with_forged_signature

from weightless.client import api
from weightless.client.errors import ClientError
from weightless.client.signatures import Verification
from weightless.client.trackers import Tracker

from .kit import error_line, help_text, invoke, ok

A, B = "aa" * 32, "bb" * 32
VALID = Verification(True, True, A, True, f"signed by key {A}, trusted for the publisher", (B, A))
UNSIGNED = Verification(False, False, None, None, "the entry is not signed")


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    answers = {"valid": VALID, "unsigned": UNSIGNED}

    def verify(what: str, **options: Any) -> Verification:
        calls.append({"what": what, **options})
        if what not in answers:
            raise ClientError(f"no registry entry at http://localhost:8080 is named {what!r}")
        return answers[what]

    monkeypatch.setattr(api, "verify", verify)
    return calls


def test_help() -> None:
    assert "--offline" in help_text("verify")


def test_a_valid_signature(asked: list[dict[str, Any]]) -> None:
    result = ok(invoke("verify", "valid", "--publisher", "acme", "--offline"))
    assert result.stdout.splitlines() == [VALID.reason, f"also signed by {B}"]
    assert asked == [{"what": "valid", "tracker": Tracker(), "publisher": "acme", "offline": True}]


def test_no_signature_exits_1_with_the_reason(asked: list[dict[str, Any]]) -> None:
    result = invoke("verify", "unsigned")
    assert result.exit_code == 1 and result.stdout == "the entry is not signed\n"


def test_json(asked: list[dict[str, Any]]) -> None:
    result = ok(invoke("verify", "valid", "--json"))
    assert json.loads(result.stdout) == {
        "signed": True,
        "valid": True,
        "public_key": A,
        "trusted": True,
    }
    result = invoke("verify", "unsigned", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "signed": False,
        "valid": False,
        "public_key": None,
        "trusted": None,
    }


def test_an_unknown_entry_is_one_line(asked: list[dict[str, Any]]) -> None:
    assert error_line(invoke("verify", "ghost")) == (
        "Error: no registry entry at http://localhost:8080 is named 'ghost'"
    )


@pytest.mark.parametrize("name", sorted(SMALL_ORDER_KEYS))
def test_a_torrent_signed_by_a_small_order_key_is_one_line_and_non_zero(
    name: str, tmp_path: Path
) -> None:
    """Checked offline with the real code: a key of small order (the identity "signs" every
    torrent with R = identity, S = 0) is refused, never reported as a valid signature."""
    data = make_torrent(tmp_path, "model.bin")
    path = tmp_path / "model.torrent"
    path.write_bytes(with_forged_signature(data, bytes.fromhex(SMALL_ORDER_KEYS[name])))
    for extra in ((), ("--json",)):
        line = error_line(invoke("verify", str(path), "--offline", *extra))
        assert line.startswith(f"Error: {path}: signature 1: pub: "), line
        assert "small order" in line or "canonical" in line
