"""Usage sync to a hub, the pure part: per-user traffic deltas folded into one batch, and the
batch's request body. The original's contract (``POST {hub}/api/internal/usage-sync``) with
its idempotency fix: a batch carries a ``sync_id`` it keeps on every retry."""

from __future__ import annotations

import json
from collections.abc import Iterable

from weightless.wire.numbers import INT64_MAX


def fold_deltas(rows: Iterable[tuple[str, int, int]]) -> str:
    """The JSON ``deltas`` of a batch from (user, uploaded, downloaded) rows: one entry per
    user, bytes summed (saturating at 2^63-1), users in sorted order."""
    totals: dict[str, list[int]] = {}
    for user, up, down in rows:
        found = totals.setdefault(user, [0, 0])
        found[0] = min(found[0] + int(up), INT64_MAX)
        found[1] = min(found[1] + int(down), INT64_MAX)
    return json.dumps(
        {u: {"Uploaded": t[0], "Downloaded": t[1]} for u, t in sorted(totals.items())},
        separators=(",", ":"),
    )


def request_body(sync_id: str, deltas: str) -> bytes:
    """``{"sync_id": "<32 hex>", "deltas": {...}}`` as sent (``deltas`` is fold_deltas's JSON)."""
    return b'{"sync_id":%s,"deltas":%s}' % (json.dumps(sync_id).encode(), deltas.encode())
