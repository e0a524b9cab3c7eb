import hashlib
import hmac

import pytest

from weightless.wire import passkey
from weightless.wire.passkey import Passkeys, valid_user_id


class CountedHmac:
    """hmac.new that counts the MACs computed (what a cached verdict saves)."""

    def __init__(self) -> None:
        self.calls = 0

    def new(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return hmac.new(*args, **kwargs)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(hmac, name)


@pytest.fixture
def macs(monkeypatch: pytest.MonkeyPatch) -> CountedHmac:
    counted = CountedHmac()
    monkeypatch.setattr(passkey, "hmac", counted)
    return counted


def test_verdicts_are_cached_and_the_cache_is_bounded(macs: CountedHmac) -> None:
    keys = Passkeys(b"k")
    good = keys.sign("alice").encode()
    bad = good[:-1] + (b"0" if good[-1:] != b"0" else b"1")
    macs.calls = 0
    for _ in range(100):  # an announce every few seconds from the same client
        assert keys.user(good) == "alice"
        assert keys.user(bad) is None
    assert macs.calls == 2  # one MAC per passkey, good or bad
    for i in range(passkey._CACHE):  # as many other passkeys: the oldest verdicts go
        keys.user(Passkeys(b"k").sign(f"u{i}").encode())
    calls = macs.calls
    assert keys.user(good) == "alice"
    assert macs.calls == calls + 1  # evicted, verified again
    assert len(keys._known) == passkey._CACHE


def test_sign_matches_the_documented_formula() -> None:
    mac = hmac.new(b"k", b"alice", hashlib.sha256).hexdigest()
    assert Passkeys(b"k").sign("alice") == f"alice.{mac}"


def test_verify() -> None:
    keys = Passkeys(b"k")
    good = keys.sign("user_1-x").encode()
    assert keys.user(good) == "user_1-x"
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


# -- publisher tokens


def test_a_publisher_token_is_the_hmac_of_the_publisher_name_under_the_registry_key() -> None:
    key = b"registry-key"
    token = passkey.publisher_token(key, "meta")
    mac = hmac.new(key, b"publisher:meta", hashlib.sha256).hexdigest()
    assert token == f"meta.{mac}"
    assert passkey.token_publisher(key, token.encode()) == "meta"
    # names with dots and non-ASCII letters: split at the last dot, UTF-8
    for name in ("org.example", "Zürich lab"):
        made = passkey.publisher_token(key, name)
        assert passkey.token_publisher(key, made.encode("utf-8")) == name


@pytest.mark.parametrize(
    "given",
    [
        b"",
        b"meta",
        b"meta.",
        b".abc",
        b"\xff\xfe." + b"0" * 64,
    ],
)
def test_what_is_not_a_token_names_no_publisher(given: bytes) -> None:
    assert passkey.token_publisher(b"registry-key", given) is None


def test_a_token_is_refused_under_another_key_for_another_name_or_as_a_passkey() -> None:
    token = passkey.publisher_token(b"registry-key", "meta")
    assert passkey.token_publisher(b"other-key", token.encode()) is None
    forged = token.replace("meta.", "mistralai.", 1)
    assert passkey.token_publisher(b"registry-key", forged.encode()) is None
    upper = "meta." + token.split(".")[1].upper()
    assert passkey.token_publisher(b"registry-key", upper.encode()) is None
    # a passkey made with the same secret for the same name is not a token, nor the reverse
    assert (
        passkey.token_publisher(b"registry-key", Passkeys(b"registry-key").sign("meta").encode())
        is None
    )
    assert Passkeys(b"registry-key").user(token.encode()) is None
    with pytest.raises(ValueError):
        passkey.publisher_token(b"k", "")


@pytest.mark.parametrize(
    "name",
    [
        "",
        " meta",
        "meta ",
        "me\x00ta",
        "meta\n",
        "a\x1b]52;c;x\x07",
        "a\u202ecod.exe",
        "\x85",
        "\ud800",
    ],
)
def test_no_token_for_a_name_no_header_can_carry_or_people_must_not_see(name: str) -> None:
    with pytest.raises(ValueError, match=r"^publisher must"):
        passkey.publisher_token(b"k", name)
