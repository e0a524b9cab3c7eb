"""The UDP socket loop without a socket: the recvmmsg/sendmmsg extension is built, and the
pure-Python loop drops replies while the kernel's send buffer is full."""

from __future__ import annotations

import sys
from typing import Any

from weightless.udp import port as udpport


def test_the_extension_is_built_on_linux() -> None:
    # make install builds it; without it the tracker still works, at about half the UDP rate
    if sys.platform.startswith("linux"):
        assert udpport.batched_available()


def test_the_python_loop_drops_replies_while_the_send_buffer_is_full() -> None:
    class FullSendBuffer:
        def __init__(self) -> None:
            self.waiting = [b"a", b"b", b"c"]

        def recvfrom(self, size: int) -> tuple[bytes, tuple[str, int]]:
            if not self.waiting:
                raise BlockingIOError
            return self.waiting.pop(0), ("192.0.2.1", 6881)

        def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
            raise BlockingIOError  # EAGAIN: the kernel's send buffer is full

    fake: Any = FullSendBuffer()
    assert udpport.serve_plain(fake, lambda d, h, p, n: d, 0.0, 100) == (3, 0, 3)
