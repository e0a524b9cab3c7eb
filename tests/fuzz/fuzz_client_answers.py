"""Fuzz harness: what the ``weightless`` command makes of a registry's or tracker's answers
(weightless.client.registry, .scrape, and the search table of weightless.client.cli.search).

The answer (status, headers, body, a redirect's Location) comes from the fuzzer through
httpx.MockTransport. Anything but a result or a one-line ClientError is a crash, and so is a
table or error that would put a control character, an escape sequence or a bidirectional
control on the terminal. Run it alone with
``python tests/fuzz/fuzz_client_answers.py tests/fuzz/corpus/client_answers``."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from typing import Any

import atheris

with atheris.instrument_imports():
    import httpx
    from rich.console import Console

    from weightless.client import http as http_module
    from weightless.client import registry as registry_module
    from weightless.client.cli import common, search
    from weightless.client.errors import ClientError
    from weightless.client.registry import Registry
    from weightless.client.scrape import refusal
    from weightless.client.trackers import Tracker

UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
STATUSES = [200, 201, 301, 302, 307, 400, 401, 404, 429, 500]
TRACKER = Tracker("http://tracker.example:8080")
ANSWER: dict[str, Any] = {}
_real_client = httpx.Client


def _answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(ANSWER["status"], headers=ANSWER["headers"], content=ANSWER["body"])


def _client(**options: Any) -> httpx.Client:
    options["transport"] = httpx.MockTransport(_answer)
    return _real_client(**options)


http_module.httpx.Client = _client  # type: ignore[misc]
registry_module.time.sleep = lambda seconds: None  # type: ignore[assignment]


def _clean(text: str) -> None:
    if UNSAFE.search(text):
        raise AssertionError(f"unsafe character on the terminal: {text!r}")


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    headers = {}
    if fdp.ConsumeBool():
        headers["Location"] = fdp.ConsumeUnicodeNoSurrogates(40)
    if fdp.ConsumeBool():
        headers["X-Total-Count"] = fdp.ConsumeUnicodeNoSurrogates(12)
    if fdp.ConsumeBool():
        headers["Retry-After"] = fdp.ConsumeUnicodeNoSurrogates(8)
    try:
        httpx.Headers(headers).raw  # noqa: B018 - header values the fuzzer cannot send
    except (UnicodeEncodeError, ValueError):
        return
    ANSWER.update(
        status=fdp.PickValueInList(STATUSES),
        headers=headers,
        body=fdp.ConsumeBytes(fdp.remaining_bytes()),
    )
    registry = Registry(TRACKER, api_key="k")
    calls = [
        lambda: registry.entry("ab" * 32),
        lambda: registry.search_by({"name": "m", "publisher": "acme", "limit": "100"}),
        lambda: registry.trusted_keys("acme"),
        lambda: registry.torrent("ab" * 32),
        lambda: registry.upload(b"d4:infodee", {"name": "m"}),
    ]
    for call in calls:
        try:
            call()
        except ClientError as e:
            message = common.fail(str(e)).message
            _clean(message)
    try:
        page = registry.search("m")
    except ClientError:
        pass
    else:
        out = io.StringIO()
        console = Console(file=out, width=250, highlight=False, soft_wrap=False)
        with contextlib.redirect_stdout(out):
            search.table(page, 0, console)
        _clean(out.getvalue().replace("\n", ""))
    registry.close()
    reason = refusal(TRACKER, None)
    if reason is not None:
        _clean(common.fail(reason).message)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
