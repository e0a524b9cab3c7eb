from collections.abc import Callable

BATCH: int
MAX_DATAGRAM: int

def serve(
    fd: int, handler: Callable[[bytes, str, int, float], bytes | None], now: float, budget: int
) -> tuple[int, int, int]: ...
