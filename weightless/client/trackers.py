"""Where a tracker is: its base URL, the announce URLs derived from it, and passkeys.

Pure: no I/O. The announce URLs are HTTP
``http://HOST[:PORT]/{passkey}/announce`` (or ``/announce`` without a passkey) and UDP
``udp://HOST:PORT/announce[/{passkey}]`` (BEP 15, the passkey as BEP 41 URL data), UDP on the
HTTP port unless told otherwise, as ``twistd weightless`` listens by default.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from weightless.client.errors import ClientError
from weightless.wire.passkey import Passkeys, valid_user_id
from weightless.wire.route import DEFAULT_TRACKER

_PROTOCOLS = ("http", "udp")
# a passkey anywhere in a text (a URL, an error): USER_ID "." 64 hex
_PASSKEY = re.compile(r"(?<![A-Za-z0-9_-])([A-Za-z0-9_-]{1,64})\.[0-9a-fA-F]{64}(?![0-9a-fA-F])")


@dataclass(frozen=True)
class Tracker:
    """A Weightless tracker and registry, as the client reaches it.

    ``url`` is the base URL (``http://host:8080``, ``https://host/prefix``); the registry API
    is under ``url + "/api"``. ``udp_port`` is the BEP 15 port (``None``: same number as the
    HTTP port; ``0``: no UDP). ``protocols`` are the announce protocols put in torrents and
    used by downloads, a subset of ``("http", "udp")``. Raises `ClientError` for a URL that is
    not http(s) with a host, a port out of range, or no protocol at all.
    """

    url: str = DEFAULT_TRACKER
    udp_port: int | None = None
    protocols: tuple[str, ...] = _PROTOCOLS

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(
                f"tracker URL must be http://HOST[:PORT] or https://..., not {self.url!r}"
            )
        if parts.query or parts.fragment:
            raise ClientError(f"tracker URL {self.url!r} must not have a query or a fragment")
        try:
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise ClientError(f"tracker URL {self.url!r} has a bad port") from None
        object.__setattr__(self, "url", self.url.rstrip("/"))
        if self.udp_port is not None and not 0 <= self.udp_port <= 65535:
            raise ClientError(f"UDP port must be 0 to 65535, not {self.udp_port}")
        unknown = set(self.protocols) - set(_PROTOCOLS)
        if unknown or not self.protocols:
            raise ClientError("announce protocols must be http, udp or both")
        if self.protocols == ("udp",) and self.udp_port == 0:
            raise ClientError("UDP announces need a UDP port")

    @property
    def host(self) -> str:
        host = urlsplit(self.url).hostname or ""
        return f"[{host}]" if ":" in host else host

    @property
    def http_port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    def api(self, path: str) -> str:
        """The URL of a registry API path such as ``/api/registry/search``."""
        return self.url + path

    @property
    def public_announce(self) -> str:
        """The HTTP announce URL without a passkey: the ``tr`` of a magnet link."""
        return self.url + "/announce"

    def announce_urls(self, passkey: str | None = None) -> list[str]:
        """The announce URLs for one tier, best first: with a passkey HTTP before UDP (only
        libtorrent-based clients send the BEP 41 URL data a UDP passkey needs), without one
        UDP first (cheaper for the tracker). Clients fall back within a tier."""
        http, udp = None, None
        if "http" in self.protocols:
            http = self.url + (f"/{quote(passkey, safe='')}/announce" if passkey else "/announce")
        port = self.http_port if self.udp_port is None else self.udp_port
        if "udp" in self.protocols and port:
            udp = f"udp://{self.host}:{port}/announce" + (
                f"/{quote(passkey, safe='')}" if passkey else ""
            )
        ordered = [http, udp] if passkey else [udp, http]
        return [url for url in ordered if url]


def make_passkey(user_id: str, secret: str | None = None) -> str:
    """``USER_ID.hex(HMAC-SHA256(secret, USER_ID))``, as the tracker checks it; ``secret``
    defaults to the ``TRACKER_SECRET`` env var. Raises `ClientError` without a secret or for
    a user id that is not 1-64 of ``[A-Za-z0-9_-]``."""
    secret = secret if secret is not None else os.environ.get("TRACKER_SECRET")
    if not secret:
        raise ClientError(
            "a passkey needs the tracker's secret: set TRACKER_SECRET or give --secret"
        )
    if not valid_user_id(user_id):
        raise ClientError(f"user id {user_id!r} must be 1-64 characters of A-Z a-z 0-9 _ -")
    return Passkeys(secret.encode()).sign(user_id)


def pick_passkey(passkey: str | None, user_id: str | None, secret: str | None = None) -> str | None:
    """The passkey given, or the one made for ``user_id`` (see `make_passkey`), or None."""
    if passkey and user_id:
        raise ClientError("give a passkey or a user id, not both")
    if passkey:
        user, dot, mac = passkey.rpartition(".")
        if not dot or not valid_user_id(user) or len(mac) != 64:
            raise ClientError("a passkey looks like USER_ID.<64 hex characters>")
        return passkey
    return make_passkey(user_id, secret) if user_id else None


def env_passkey(passkey: str | None) -> str | None:
    """``passkey``, else ``WL_PASSKEY`` (as the command reads it), else None."""
    return passkey if passkey else os.environ.get("WL_PASSKEY") or None


def hide_passkeys(text: str) -> str:
    """``text`` with every passkey cut to its user id: ``alice.…`` (a passkey is a
    credential: it is never printed in full, in a URL, an error or a status line)."""
    return _PASSKEY.sub(lambda m: f"{m.group(1)}.…", text)
