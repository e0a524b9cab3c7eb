"""State files read at start (kept writes, swarm snapshots, the UDP key): one that is damaged or
of the wrong shape is set aside as ``NAME.corrupt`` with the reason logged, and the start goes on
without it. Nothing read from disk can stop a tracker from serving."""

from __future__ import annotations

import os

from twisted.logger import Logger

log = Logger()
CORRUPT = ".corrupt"


def set_aside(path: str, reason: object, name: str | None = None) -> None:
    """Rename the damaged file ``path`` to ``NAME.corrupt`` (``name`` defaults to ``path``; a
    claimed file keeps the name it was found under) and log why. An older ``.corrupt`` of the
    same name is replaced; a file another process set aside first is left to it."""
    target = (name or path) + CORRUPT
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return  # another worker found it damaged first
    except OSError as e:
        log.error(
            "damaged state file {path} ({reason}) could not be set aside: {e}",
            path=path,
            reason=reason,
            e=e,
        )
        return
    log.error(
        "damaged state file {name} set aside as {target}, starting without it: {reason}",
        name=name or path,
        target=target,
        reason=reason,
    )
