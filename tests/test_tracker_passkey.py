import hashlib
import hmac

import pytest

from weightless.tracker.passkey import Passkeys, valid_user_id


def test_sign_matches_the_documented_formula() -> None:
    mac = hmac.new(b"k", b"alice", hashlib.sha256).hexdigest()
    assert Passkeys(b"k").sign("alice") == f"alice.{mac}"


def test_verify() -> None:
    keys = Passkeys(b"k")
    good = keys.sign("user_1-x").encode()
    assert keys.user(good) == "user_1-x"
    assert keys.user(good) == "user_1-x"  # cached verdict
    assert keys.user(good[:-1] + b"0" if good[-1:] != b"0" else good[:-1] + b"1") is None
    assert Passkeys(b"other").user(good) is None
    assert keys.user(b"no-dot") is None
    assert keys.user(b"\xff\xfe.abc") is None
    assert keys.user(good.upper()) is None  # the signature is lowercase hex


@pytest.mark.parametrize("user", ["", "a" * 65, "bad id", "ü", "a.b"])
def test_user_ids_are_restricted(user: str) -> None:
    assert not valid_user_id(user)
    with pytest.raises(ValueError):
        Passkeys(b"k").sign(user)
