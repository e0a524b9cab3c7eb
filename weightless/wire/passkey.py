"""Signed passkeys: ``USER_ID + "." + hex(HMAC-SHA256(TRACKER_SECRET, USER_ID))``.

A passkey proves who announces without a database lookup."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import OrderedDict

_USER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_CACHE = 10_000


def valid_user_id(user_id: str) -> bool:
    return _USER_ID.match(user_id) is not None


class Passkeys:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        # announces repeat the same few passkeys; remember recent verdicts (bounded)
        self._known: OrderedDict[bytes, str | None] = OrderedDict()

    def sign(self, user_id: str) -> str:
        if not valid_user_id(user_id):
            raise ValueError("user id must be 1-64 characters of A-Z a-z 0-9 _ -")
        mac = hmac.new(self._secret, user_id.encode("ascii"), hashlib.sha256).hexdigest()
        return f"{user_id}.{mac}"

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
        try:
            text = passkey.decode("ascii")
        except UnicodeDecodeError:
            return None
        user_id, dot, signature = text.rpartition(".")
        if not dot or not valid_user_id(user_id) or len(signature) != 64:
            return None
        expected = hmac.new(self._secret, user_id.encode("ascii"), hashlib.sha256).hexdigest()
        return user_id if hmac.compare_digest(expected, signature) else None
