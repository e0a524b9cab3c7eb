"""Stateless signed names. Passkeys: ``USER_ID + "." + hex(HMAC-SHA256(TRACKER_SECRET,
USER_ID))``; publisher tokens: ``PUBLISHER + "." + hex(HMAC-SHA256(REGISTRY_KEY, "publisher:" +
PUBLISHER))``.

Either proves who speaks without a database lookup; signatures are 64 lowercase hex characters,
compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import OrderedDict

from weightless.wire.text import describe, unsafe_char

_USER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_CACHE = 10_000


def valid_user_id(user_id: str) -> bool:
    return _USER_ID.match(user_id) is not None


def signature(secret: bytes, message: str) -> str:
    """hex(HMAC-SHA256(key=secret, msg=message as UTF-8)), 64 lowercase hex characters."""
    return hmac.new(secret, message.encode("utf-8"), hashlib.sha256).hexdigest()


def signed_name(secret: bytes, given: bytes, prefix: str = "") -> str | None:
    """The NAME of ``given`` when it is ``NAME + "." + signature(secret, prefix + NAME)`` (NAME
    non-empty UTF-8, split at the last dot), else None; compared in constant time."""
    try:
        text = given.decode("utf-8")
    except UnicodeDecodeError:
        return None
    name, dot, mac = text.rpartition(".")
    if not dot or not name or len(mac) != 64:
        return None
    return name if hmac.compare_digest(signature(secret, prefix + name), mac) else None


PUBLISHER_PREFIX = "publisher:"  # keeps a token apart from a passkey made with the same secret


def publisher_token(registry_key: bytes, publisher: str) -> str:
    """The X-Weightless-Key a publisher writes its own entries with (see `signed_name`).
    ValueError for a name no header can carry or people must not be shown: empty, space at
    either end, or a character of ``weightless.wire.text.unsafe_char`` (controls, NUL, bidi
    overrides), or not encodable as UTF-8."""
    bad = unsafe_char(publisher)
    if bad is not None:
        raise ValueError(f"publisher must not contain {describe(bad)}")
    if not publisher or publisher != publisher.strip():
        raise ValueError("publisher must be a non-empty name without space at either end")
    try:
        publisher.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("publisher must be valid Unicode text") from None
    return f"{publisher}.{signature(registry_key, PUBLISHER_PREFIX + publisher)}"


def token_publisher(registry_key: bytes, token: bytes) -> str | None:
    """The publisher a token was made for, or None when it is not one (wrong key, malformed)."""
    return signed_name(registry_key, token, PUBLISHER_PREFIX)


class Passkeys:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        # announces repeat the same few passkeys; remember recent verdicts (bounded)
        self._known: OrderedDict[bytes, str | None] = OrderedDict()

    def sign(self, user_id: str) -> str:
        if not valid_user_id(user_id):
            raise ValueError("user id must be 1-64 characters of A-Z a-z 0-9 _ -")
        return f"{user_id}.{signature(self._secret, user_id)}"

    def user(self, passkey: bytes) -> str | None:
        """The user a passkey belongs to, or None when it is not valid."""
        known = self._known
        if passkey in known:
            known.move_to_end(passkey)
            return known[passkey]
        user = self._verify(passkey)
        known[passkey] = user
        if len(known) > _CACHE:
            known.popitem(last=False)
        return user

    def _verify(self, passkey: bytes) -> str | None:
        user_id = signed_name(self._secret, passkey)
        return user_id if user_id is not None and valid_user_id(user_id) else None
