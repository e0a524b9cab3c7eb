"""``weightless.client``: publish and fetch models and datasets through a Weightless tracker.

The same operations as the ``weightless`` command::

    from weightless import client
    path = client.get("org/model-name", tracker="http://tracker.example:8080")
    older = client.get("org/model-name@v1")  # a version label, or 8+ hex of an info hash

`create`, `publish`, `get` (`fetch` for the details), `seed`, `search`, `passkey`, `token`,
`verify` (key files in `weightless.client.keys`, signing in `weightless.client.signatures`); every
failure a user can cause raises `ClientError`. The tracker never imports this package; it
needs the ``client`` extra (``pip install weightless[client]``: libtorrent, click, rich, httpx).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from weightless.client.api import (
        Created,
        Published,
        create,
        passkey,
        publish,
        search,
        seed,
        token,
        verify,
    )
    from weightless.client.errors import ClientError
    from weightless.client.fetching import Fetched, fetch, get
    from weightless.client.registry import SearchPage
    from weightless.client.trackers import Tracker
    from weightless.client.transfer import Settings, Status

# where each name lives; imported on first use, so that `weightless get` of data in the cache
# does not load what only the registry and publishing need (httpx, cryptography)
_HOMES = {
    "ClientError": "weightless.client.errors",
    "Fetched": "weightless.client.fetching",
    "fetch": "weightless.client.fetching",
    "get": "weightless.client.fetching",
    "SearchPage": "weightless.client.registry",
    "Tracker": "weightless.client.trackers",
    "Settings": "weightless.client.transfer",
    "Status": "weightless.client.transfer",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name not in __all__:
        raise AttributeError(f"module 'weightless.client' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES.get(name, "weightless.client.api")), name)
    globals()[name] = value
    return value


__all__ = [
    "ClientError",
    "Created",
    "Fetched",
    "Published",
    "SearchPage",
    "Settings",
    "Status",
    "Tracker",
    "create",
    "fetch",
    "get",
    "passkey",
    "publish",
    "search",
    "seed",
    "token",
    "verify",
]
