"""Random bytes for identifiers made on every request (decision ids, request ids): drawn from the
operating system 4 KiB at a time rather than one system call per identifier, per thread; a
forked child draws its own. Identifiers, not secrets: keys and tokens use `secrets`."""

from __future__ import annotations

import os
import threading

POOL_BYTES = 4096


class _Pool(threading.local):
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.pool = b""
        self.at = 0

    def take(self, count: int) -> bytes:
        if self.at + count > len(self.pool):
            self.pool, self.at = os.urandom(max(POOL_BYTES, count)), 0
        self.at += count
        return self.pool[self.at - count : self.at]


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.reset)


def random_bytes(count: int) -> bytes:
    """`count` bytes from the operating system's random source (through this thread's pool)."""
    return _pool.take(count)
