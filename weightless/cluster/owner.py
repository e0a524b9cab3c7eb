"""Which worker owns a swarm, and the kernel program that steers UDP announces to it.

Every swarm lives in exactly one worker: the one whose index is the first four bytes of the
swarm key (big-endian) modulo the number of workers. A classic BPF program attached to the
SO_REUSEPORT group of the UDP sockets computes the same index from the announce's info hash, so
most UDP announces arrive at their owner and need no hop."""

from __future__ import annotations

import ctypes
import socket
import struct

SO_ATTACH_REUSEPORT_CBPF = 51

# classic BPF opcodes
_LD_W_ABS = 0x20  # A = word at packet offset k (network byte order)
_JEQ_K = 0x15  # if A == k goto jt else jf
_MOD_K = 0x94  # A %= k
_RET_A = 0x16
_RET_K = 0x06

_ACTION_OFFSET = 8  # BEP 15 announce: connection id (8), action (4), transaction id (4), hash
_HASH_OFFSET = 16


def owner_of(key: bytes, workers: int) -> int:
    return int.from_bytes(key[:4], "big") % workers


def steering_program(workers: int) -> list[tuple[int, int, int, int]]:
    """(code, jt, jf, k) instructions: an announce goes to socket ``hash[0:4] % workers``;
    anything else returns an index past the group, which makes the kernel fall back to its
    usual hash of the source address."""
    return [
        (_LD_W_ABS, 0, 0, _ACTION_OFFSET),
        (_JEQ_K, 0, 3, 1),
        (_LD_W_ABS, 0, 0, _HASH_OFFSET),
        (_MOD_K, 0, 0, workers),
        (_RET_A, 0, 0, 0),
        (_RET_K, 0, 0, 0xFFFFFFFF),
    ]


def attach_steering(sock: socket.socket, workers: int) -> None:
    """Attach the steering program to the reuseport group ``sock`` belongs to."""
    program = steering_program(workers)
    filters = (ctypes.c_ubyte * (8 * len(program))).from_buffer_copy(
        b"".join(struct.pack("=HBBI", *ins) for ins in program)
    )
    fprog = struct.pack("HL", len(program), ctypes.addressof(filters))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
