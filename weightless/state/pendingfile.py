"""State a clean stop could not hand to the database, kept in files and taken back at start:
queued writes (the database was down) and the accounting baselines of passkey peers (so that
their traffic between the last announce before a restart and the first after it counts).

Each stopping process writes its own file; at start each file is claimed by one process (a
rename) and removed once taken, so nothing is counted twice, with any number of workers."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from twisted.logger import Logger

from weightless.state.atomic import PUBLIC, write_atomic
from weightless.state.statefile import CORRUPT, set_aside
from weightless.tracker.accounting import Accounting, PendingWrites
from weightless.wire.numbers import INT64_MAX

T = TypeVar("T")

log = Logger()


def keep(path: str, data: dict[str, Any]) -> str:
    """Write ``data`` to a file of this process next to ``path``; returns its name."""
    target = f"{path}.{os.getpid()}"
    write_atomic(target, json.dumps(data).encode(), PUBLIC)
    return target


def claim(path: str, parse: Callable[[Any], T]) -> Iterator[T]:
    """``parse`` of the data of every file kept next to ``path`` that no other process took
    first. A file that is not JSON, or that ``parse`` refuses (ValueError, TypeError, ...), is
    set aside as ``NAME.corrupt`` with the reason logged."""
    for found in sorted(glob.glob(f"{glob.escape(path)}.*")):
        if found.endswith((".tmp", CORRUPT)) or ".claimed-" in found:
            continue
        claimed = f"{found}.claimed-{os.getpid()}"
        try:
            os.rename(found, claimed)
        except OSError:
            continue  # another worker took it
        try:
            with open(claimed, "rb") as f:
                parsed = parse(json.loads(f.read()))
        except Exception as e:  # anything in the file that is not what we wrote
            set_aside(claimed, f"{type(e).__name__}: {e}", name=found)
            continue
        os.unlink(claimed)
        yield parsed


def _count(value: Any) -> int:
    """A non-negative integer total from a kept file (a larger one saturates, as a client's)."""
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a non-negative integer, found {value!r}")
    return min(value, INT64_MAX)


def _object(data: Any, key: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    if key not in data:
        raise ValueError(f"no {key!r}")
    return data[key]


def parse_pending(data: Any) -> PendingWrites:
    """The kept writes of a file's JSON: ``{"completions": {hash: n}, "traffic": {user:
    [uploaded, downloaded]}}``; ValueError or TypeError for anything else."""
    completions = _object(data, "completions")
    traffic = _object(data, "traffic")
    if not isinstance(completions, dict) or not isinstance(traffic, dict):
        raise ValueError("completions and traffic must be objects")
    batch = PendingWrites()
    batch.completions = {str(k): _count(v) for k, v in completions.items()}
    for user, totals in traffic.items():
        if not isinstance(totals, list) or len(totals) != 2:
            raise ValueError(f"traffic of {user!r}: expected [uploaded, downloaded]")
        batch.traffic[str(user)] = [_count(totals[0]), _count(totals[1])]
    return batch


def parse_baselines(data: Any) -> list[list[Any]]:
    """Accounting baselines: ``{"peers": [[user, swarm hex, address hex, up, down, seen]]}``."""
    peers = _object(data, "peers")
    if not isinstance(peers, list):
        raise ValueError("peers must be a list")
    checked = []
    for peer in peers:
        if not isinstance(peer, list) or len(peer) != 6:
            raise ValueError(f"expected [user, swarm, address, up, down, seen], found {peer!r}")
        user, swarm, addr, up, down, seen = peer
        if not isinstance(user, str) or not isinstance(swarm, str) or not isinstance(addr, str):
            raise ValueError(f"user, swarm and address must be strings in {peer!r}")
        if len(bytes.fromhex(swarm)) != 20 or len(bytes.fromhex(addr)) not in (6, 18):
            raise ValueError(f"bad swarm or address in {peer!r}")
        if type(seen) not in (int, float):
            raise ValueError(f"seen must be a number in {peer!r}")
        checked.append([user, swarm, addr, _count(up), _count(down), float(seen)])
    return checked


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
    for batch in claim(path, parse_pending):
        pending.restore(batch)
        log.info("queued again {n} kept completions and traffic totals", n=len(batch))


def save_baselines(accounting: Accounting, path: str) -> None:
    if len(accounting):
        keep(path, {"peers": accounting.baselines()})


def restore_baselines(accounting: Accounting, path: str) -> None:
    for peers in claim(path, parse_baselines):
        accounting.restore_baselines(peers)


def worker_baselines(path: str, index: int) -> str:
    """Where worker ``index`` of several finds the baselines of the swarms it owns."""
    return f"{path}-w{index}"


def split_baselines(path: str, workers: int, owner: Callable[[bytes], int]) -> None:
    """Before workers start: hand every kept baseline (the files of the processes that
    stopped, and any a worker of the last start did not take) to the worker that owns its
    swarm now (``owner`` of the swarm key), so that a peer's next announce, which reaches that
    worker, counts from what the peer had reported."""
    bases = [path] + sorted(
        {found.rsplit(".", 1)[0] for found in glob.glob(f"{glob.escape(path)}-w*.*")}
    )
    shares: dict[int, list[list[Any]]] = {}
    for base in bases:
        for peers in claim(base, parse_baselines):
            for peer in peers:
                shares.setdefault(owner(bytes.fromhex(peer[1])), []).append(peer)
    for index, peers in shares.items():
        if 0 <= index < workers:
            keep(worker_baselines(path, index), {"peers": peers})
