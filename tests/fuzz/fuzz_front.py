"""Fuzz harness: the HTTP listener's request parsing (the front protocol's fast path and the
StrictChannel it hands other heads to), in memory.

Any exception, a 500, or an answer that is not an HTTP status line is a crash. Run it
alone with ``python tests/fuzz/fuzz_front.py tests/fuzz/corpus/front``; ``make fuzz`` runs it
longer, and tests/fuzz/test_fuzz.py for a few seconds."""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# coverage is measured in the tracker's own code only: instrumenting Twisted, Klein and the
# rest costs minutes at every start
with atheris.instrument_imports(include=["weightless"]):
    from helpers import Conn, FakeStore, build_stack
    from twisted.internet.defer import succeed
    from twisted.internet.testing import MemoryReactorClock

    import weightless.web.channel
    import weightless.web.front
    import weightless.wire.query  # noqa: F401

STACK = build_stack(FakeStore(lambda: succeed(None)), MemoryReactorClock())
STACK.front.limits.per_address = 0


def TestOneInput(data: bytes) -> None:
    # the first byte says where the stream is cut into two reads
    cut = data[0] * len(data) // 256 if data else 0
    conn = Conn(STACK)
    conn.send(data[:cut])
    conn.send(data[cut:])
    STACK.reactor.advance(61)  # every timer of the connection runs
    out = conn.transport.value()
    if out and not (out.startswith((b"HTTP/1.1 ", b"HTTP/1.0 "))):
        raise AssertionError(f"not an HTTP answer: {out[:80]!r}")
    if b"HTTP/1.1 500 " in out:
        raise AssertionError(f"a 500 for {data[:200]!r}")
    conn.protocol.connectionLost(None)
    if len(STACK.swarms.swarms) > 10000:
        STACK.swarms.swarms.clear()


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
