"""A hostile HTTP server for the client's tests: real sockets, one thread per connection, each
connection answered by a behaviour written in the test (stream forever, trickle, lie about
Content-Length, redirect elsewhere). It records what it was sent and how much it wrote."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

Behaviour = Callable[[socket.socket, bytes], None]  # (connection, the request head) -> None


@dataclass
class Seen:
    heads: list[bytes] = field(default_factory=list)
    sent: int = 0  # bytes written by behaviours (counted by `send`)


class HostileServer:
    """Listens on 127.0.0.1 (a free port); every request gets ``behaviour``."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.seen = Seen()
        self.stopped = threading.Event()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def send(self, conn: socket.socket, data: bytes) -> bool:
        """Write ``data``; False once the client has gone (or the server is stopping)."""
        if self.stopped.is_set():
            return False
        try:
            conn.sendall(data)
        except OSError:
            return False
        self.seen.sent += len(data)
        return True

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            head = b""
            try:
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    head += chunk
            except OSError:
                return
            self.seen.heads.append(head)
            with contextlib.suppress(OSError):
                self.behaviour(conn, head)

    def close(self) -> None:
        self.stopped.set()
        self._listener.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
