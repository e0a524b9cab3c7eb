"""The tracker's registry API (``/api/registry...``, the raw .torrent upload and the trusted
keys of publishers), as blocking calls. Every failure is a `ClientError` with one line a
person can act on."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from weightless.client.errors import ClientError
from weightless.client.http import MAX_JSON, Answer, Bounded
from weightless.client.trackers import Tracker
from weightless.torrent.metainfo import MAX_TORRENT_BYTES

Entry = dict[str, Any]  # a RegistryEntry as the API returns it
MAX_TORRENT = MAX_TORRENT_BYTES  # the registry's limit on an uploaded .torrent, 16 MiB
RETRIES = 5  # on 429, waiting Retry-After (at most MAX_WAIT seconds) each time
MAX_WAIT = 10.0


@dataclass(frozen=True)
class SearchPage:
    """One page of ``GET /api/registry/search``: the entries and ``X-Total-Count``."""

    total: int
    entries: list[Entry]


class Registry:
    """Calls to one tracker's ``/api``. ``api_key`` goes in ``X-Weightless-Key`` on writes.

    Each answer is read within `weightless.client.http`'s bounds: one deadline for the whole
    exchange, JSON up to 16 MiB and a .torrent up to the registry's upload limit, and no
    redirect to another origin."""

    def __init__(self, tracker: Tracker, api_key: str | None = None) -> None:
        self.tracker = tracker
        self.api_key = api_key
        self._http = Bounded(
            f"the tracker at {tracker.url}", https=tracker.url.startswith("https:")
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, limit: int = MAX_JSON, **kwargs: Any) -> Answer:
        url = self.tracker.api(path)
        for attempt in range(RETRIES + 1):
            response = self._http.request(method, url, limit=limit, **kwargs)
            if response.status != 429 or attempt == RETRIES:
                return response
            time.sleep(_retry_after(response.headers.get("Retry-After", "1")))
        raise AssertionError("unreachable")

    def _fail(self, response: Answer, what: str) -> ClientError:
        try:
            reason = str(response.json()["error"])
        except (ValueError, KeyError, TypeError):
            reason = response.reason or "no reason given"
        if response.status == 401:
            reason += " (give the registry key or a publisher token with --api-key or WL_API_KEY)"
        return ClientError(f"{what}: {reason} (HTTP {response.status})")

    def _json(self, response: Answer, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ClientError(
                f"{what}: {self.tracker.url} did not answer JSON; is it a Weightless tracker?"
            ) from None

    def entry(self, info_hash: str) -> Entry | None:
        """``GET /api/registry``: the entry of a v2 (64 hex) or v1 (40 hex) hash, or None."""
        response = self._request("GET", "/api/registry", params={"info_hash": info_hash})
        if response.status == 404:
            return None
        if response.status != 200:
            raise self._fail(response, f"looking up {info_hash}")
        return _entry(self._json(response, f"looking up {info_hash}"), f"looking up {info_hash}")

    def search(
        self,
        q: str | None = None,
        *,
        category: str | None = None,
        publisher: str | None = None,
        tags: str | None = None,
        sort: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> SearchPage:
        """``GET /api/registry/search`` with q, category, publisher, tags, sort, limit and
        offset; limit is 1 to 100."""
        params = {
            k: v
            for k, v in {
                "q": q,
                "category": category,
                "publisher": publisher,
                "tags": tags,
                "sort": sort,
                "limit": limit,
                "offset": offset,
            }.items()
            if v is not None and v != ""
        }
        return self.search_by(params)

    def _page(self, response: Answer) -> SearchPage:
        if response.status != 200:
            raise self._fail(response, "searching the registry")
        entries = self._json(response, "searching the registry")
        if not isinstance(entries, list):
            raise ClientError("searching the registry: the answer is not a list of entries")
        entries = [_entry(e, "searching the registry") for e in entries]
        try:
            total = int(response.headers.get("X-Total-Count", len(entries)))
        except ValueError:
            total = len(entries)
        if total < 0:  # no count of entries is negative
            total = len(entries)
        return SearchPage(total, entries)

    def search_by(self, params: Mapping[str, str | int]) -> SearchPage:
        """``GET /api/registry/search`` with these parameters as they are (``name``,
        ``publisher``, ``version``, ``sort``, ``limit``...)."""
        response = self._request("GET", "/api/registry/search", params=params)
        return self._page(response)

    def trusted_keys(self, publisher: str) -> list[str]:
        """``GET /api/publishers/{publisher}``: the public keys (64 hex) the registry trusts
        for that publisher name; [] for none."""
        path = "/api/publishers/" + quote(publisher, safe="")
        response = self._request("GET", path)
        what = f"looking up the keys trusted for {publisher!r}"
        if response.status != 200:
            raise self._fail(response, what)
        found = self._json(response, what)
        keys = found.get("keys") if isinstance(found, dict) else None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ClientError(f"{what}: the answer has no list of keys")
        return [k.lower() for k in keys]

    def torrent(self, info_hash: str) -> bytes | None:
        """``GET /api/registry/torrent``: the stored .torrent bytes, or None if none is stored."""
        response = self._request(
            "GET", "/api/registry/torrent", MAX_TORRENT, params={"info_hash": info_hash}
        )
        if response.status == 404:
            return None
        if response.status != 200:
            raise self._fail(response, f"fetching the .torrent of {info_hash}")
        return response.body

    def _write_headers(self, content_type: str) -> dict[str, str | bytes]:
        """The headers of a write: the key as UTF-8 (a publisher token's name may be any
        text, ``mistral-é.<hex>``); `ClientError` for a key no header can carry."""
        headers: dict[str, str | bytes] = {"Content-Type": content_type}
        if self.api_key:
            key = self.api_key.encode("utf-8", "surrogateescape")
            if any(b < 0x20 or b == 0x7F for b in key) or key != key.strip():
                raise ClientError(
                    "the API key (--api-key, WL_API_KEY) has a control character or space at "
                    "an end: give the registry key or the token as `weightless token` printed it"
                )
            headers["X-Weightless-Key"] = key
        return headers

    def put_card(self, info_hash: str, text: str) -> None:
        """``PUT /api/registry/card``: store the entry's model card (Markdown)."""
        response = self._request(
            "PUT",
            "/api/registry/card",
            params={"info_hash": info_hash},
            content=text.encode("utf-8"),
            headers=self._write_headers("text/markdown; charset=utf-8"),
        )
        if response.status not in (200, 201, 204):
            raise self._fail(response, "registered, but storing the model card failed")

    def upload(self, torrent: bytes, fields: dict[str, str]) -> Entry:
        """``POST /api/registry/torrent`` with the exact bytes; returns the answer
        (``status``, ``info_hash``, ``v1_info_hash``)."""
        headers = self._write_headers("application/x-bittorrent")
        params = {k: v for k, v in fields.items() if v}
        response = self._request(
            "POST", "/api/registry/torrent", params=params, content=torrent, headers=headers
        )
        if response.status != 201:
            raise self._fail(response, "registering the torrent")
        answer = self._json(response, "registering the torrent")
        if not isinstance(answer, dict):
            raise ClientError("registering the torrent: the answer is not a JSON object")
        return answer


def _retry_after(value: str) -> float:
    """Seconds to wait on a 429: ``Retry-After`` in seconds, within 0.2 s and `MAX_WAIT`; 1 s
    for anything else (an HTTP date, text, NaN, which no clock can wait)."""
    try:
        wait = float(value)
    except ValueError:
        return 1.0
    return min(max(wait, 0.2), MAX_WAIT) if not math.isnan(wait) else 1.0


_HASH = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")
_TEXT_FIELDS = ("name", "publisher", "version", "description", "license", "category", "tags")


def _entry(value: Any, what: str) -> Entry:
    """``value`` if it is an entry: a JSON object whose ``info_hash`` is a v2 (64 hex) or v1
    (40 hex) hash, whose ``v1_info_hash`` is 40 hex or null, and whose text fields (name,
    publisher, version...) are text or null. A registry that answers anything else gets one
    line, never a traceback further on, and no answer's hash becomes a path in the cache."""
    if not isinstance(value, dict) or not _is_hash(value.get("info_hash"), 40, 64):
        raise ClientError(f"{what}: the registry answered something that is not an entry")
    v1 = value.get("v1_info_hash")
    texts_ok = all(isinstance(value.get(k), (str, type(None))) for k in _TEXT_FIELDS)
    if not (v1 is None or _is_hash(v1, 40)) or not texts_ok:
        raise ClientError(f"{what}: the registry answered something that is not an entry")
    return value


def _is_hash(value: Any, *lengths: int) -> bool:
    return isinstance(value, str) and len(value) in lengths and bool(_HASH.fullmatch(value))
