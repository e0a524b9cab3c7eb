"""Queued writes that could not reach the database before a clean stop, kept in a file and
queued again at the next start, so that a stop while the database is down loses nothing."""

from __future__ import annotations

import glob
import json
import os

from twisted.logger import Logger

from weightless.tracker.accounting import PendingWrites

log = Logger()


def save(pending: PendingWrites, path: str) -> None:
    """Write what is still queued next to ``path`` (one file per process that stops)."""
    if not pending:
        return
    target = f"{path}.{os.getpid()}"
    with open(f"{target}.tmp", "w") as f:
        json.dump({"completions": pending.completions, "traffic": pending.traffic}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(f"{target}.tmp", target)
    log.warn(
        "the database did not take the last writes: kept {c} completions and {u} users' "
        "traffic in {path}",
        c=sum(pending.completions.values()),
        u=len(pending.traffic),
        path=target,
    )


def restore(pending: PendingWrites, path: str) -> None:
    """Queue again every kept file; each is claimed by one process (a rename) and removed."""
    for found in sorted(glob.glob(f"{glob.escape(path)}.*")):
        if found.endswith(".tmp") or ".claimed-" in found:
            continue
        claimed = f"{found}.claimed-{os.getpid()}"
        try:
            os.rename(found, claimed)
        except OSError:
            continue  # another worker took it
        try:
            with open(claimed) as f:
                kept = json.load(f)
            batch = PendingWrites()
            batch.completions = {str(k): int(v) for k, v in kept["completions"].items()}
            batch.traffic = {str(k): [int(v[0]), int(v[1])] for k, v in kept["traffic"].items()}
        except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
            log.warn("ignoring unreadable queued writes in {path}: {e}", path=found, e=e)
            continue
        pending.restore(batch)
        os.unlink(claimed)
        log.info("queued again the writes kept in {path}", path=found)
