"""What a worker process is told by its supervisor, through one environment variable."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from dataclasses import asdict, dataclass

ENV = "WEIGHTLESS_CLUSTER"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Seat:
    index: int
    workers: int
    directory: str  # the supervisor's private folder: mesh sockets, the shared rate table
    http_fd: int
    http_family: int
    udp_fd: int | None
    udp_family: int
    secret: str  # hex; the key of UDP connection ids, the same in every worker
    supervisor: int  # its pid

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ: dict[str, str] | os._Environ[str]) -> Seat | None:
        raw = environ.get(ENV)
        return None if not raw else cls(**json.loads(raw))

    @property
    def limiter_path(self) -> str:
        return os.path.join(self.directory, "ratelimit")

    @property
    def connections_path(self) -> str:
        """The table of open connections per address, one row per worker."""
        return os.path.join(self.directory, "connections")


def die_with_supervisor(supervisor: int) -> None:
    """Ask the kernel to SIGTERM this process when the supervisor dies (even by SIGKILL), and
    leave at once if it is already gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != supervisor:
        os._exit(1)
