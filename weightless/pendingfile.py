"""State a clean stop could not hand to the database, kept in files and taken back at start:
queued writes (the database was down) and the accounting baselines of passkey peers (so that
their traffic between the last announce before a restart and the first after it counts).

Each stopping process writes its own file; at start each file is claimed by one process (a
rename) and removed once taken, so nothing is counted twice, with any number of workers."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator
from typing import Any

from twisted.logger import Logger

from weightless.tracker.accounting import Accounting, PendingWrites

log = Logger()


def keep(path: str, data: dict[str, Any]) -> str:
    """Write ``data`` to a file of this process next to ``path``; returns its name."""
    target = f"{path}.{os.getpid()}"
    with open(f"{target}.tmp", "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(f"{target}.tmp", target)
    return target


def claim(path: str) -> Iterator[dict[str, Any]]:
    """The data of every file kept next to ``path`` that no other process took first."""
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
                data = json.load(f)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            yield data
        except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
            log.warn("ignoring unreadable kept state in {path}: {e}", path=found, e=e)
            continue
        os.unlink(claimed)


def save_pending(pending: PendingWrites, path: str) -> None:
    if not pending:
        return
    target = keep(path, {"completions": pending.completions, "traffic": pending.traffic})
    log.warn(
        "the database did not take the last writes: kept {c} completions and {u} users' "
        "traffic in {path}",
        c=sum(pending.completions.values()),
        u=len(pending.traffic),
        path=target,
    )


def restore_pending(pending: PendingWrites, path: str) -> None:
    for kept in claim(path):
        batch = PendingWrites()
        batch.completions = {str(k): int(v) for k, v in kept["completions"].items()}
        batch.traffic = {str(k): [int(v[0]), int(v[1])] for k, v in kept["traffic"].items()}
        pending.restore(batch)
        log.info("queued again {n} kept completions and traffic totals", n=len(batch.traffic))


def save_baselines(accounting: Accounting, path: str) -> None:
    if len(accounting):
        keep(path, {"peers": accounting.baselines()})


def restore_baselines(accounting: Accounting, path: str) -> None:
    for kept in claim(path):
        accounting.restore_baselines(kept["peers"])
