"""Fuzz harness: the ``weightless`` command reading a registry's answers
(weightless.client.registry: an entry, a search page, trusted keys, a stored .torrent; then
weightless.client.signatures on what it read), from a hostile registry behind an in-memory
HTTP transport.

The first byte picks the call, the second the status; a first line starting with ``#`` gives
``X-Total-Count``; the rest is the body. Anything but a result or a ClientError is a crash,
and so is a result of the wrong shape: an entry that is not a JSON object with a string
``info_hash``, a search page that is not a list of them, trusted keys that are not strings.
Run it alone with
``python tests/fuzz/fuzz_registry_answers.py tests/fuzz/corpus/registry_answers``."""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports(include=["weightless"]):
    import httpx

    from weightless.client import signatures
    from weightless.client.errors import ClientError
    from weightless.client.registry import Registry
    from weightless.client.trackers import Tracker

STATUSES = (200, 200, 200, 201, 400, 401, 404, 500, 503, 302)
TRACKER = Tracker("http://registry.invalid:8080")
HASH = "ab" * 32


ANSWER: list[httpx.Response] = []


def _answer(request: httpx.Request) -> httpx.Response:
    return ANSWER[0]


# one registry for every input (making an HTTP client per input costs ~80 ms: its TLS context)
# (its bounded reader kept: only the transport under it is replaced)
REGISTRY = Registry(TRACKER, api_key="k")
REGISTRY._http._http.close()
REGISTRY._http._http = httpx.Client(transport=httpx.MockTransport(_answer))


def _is_entry(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("info_hash"), str)


def _check_entry(entry: dict[str, object]) -> None:
    """What `get` and `verify` do with an entry they read: only ClientError may come out."""
    with contextlib.suppress(ClientError):
        signatures.verify_entry(entry, None, None)
    for required in (False, True):
        with contextlib.suppress(ClientError):
            signatures.download_check(required)(None, entry)


def _call(call: int, registry: Registry) -> None:
    if call == 0:
        entry = registry.entry(HASH)
        if entry is not None:
            if not _is_entry(entry):
                raise AssertionError(f"entry() returned {entry!r}")
            _check_entry(entry)
    elif call == 1:
        page = registry.search("model")
        if not isinstance(page.total, int) or not all(map(_is_entry, page.entries)):
            raise AssertionError(f"search() returned {page!r}")
        for found in page.entries:
            _check_entry(found)
    elif call == 2:
        keys = registry.trusted_keys("org")
        if not all(isinstance(k, str) for k in keys):
            raise AssertionError(f"trusted_keys() returned {keys!r}")
    elif call == 3:
        torrent = registry.torrent(HASH)
        if torrent is not None:
            signatures.verify_torrent(torrent)
    else:
        named = registry.search_by({"name": "model", "sort": "created_at", "limit": "100"})
        if not isinstance(named.total, int) or not all(map(_is_entry, named.entries)):
            raise AssertionError(f"search_by() returned {named!r}")


def TestOneInput(data: bytes) -> None:
    if len(data) < 2:
        return
    call, status, rest = data[0] % 5, STATUSES[data[1] % len(STATUSES)], data[2:]
    headers = [(b"Content-Type", b"application/json")]
    if rest.startswith(b"#"):
        line, _, rest = rest.partition(b"\n")
        headers.append((b"X-Total-Count", line[1:]))
    ANSWER[:] = [httpx.Response(status, content=rest, headers=headers)]
    with contextlib.suppress(ClientError):
        _call(call, REGISTRY)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
