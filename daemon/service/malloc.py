"""glibc's allocator, set up for a daemon that runs for months in a few threads.

Why: glibc gives every thread that allocates its own arena (up to 8 per core), and memory
freed in one arena is not reused by another. The daemon's ingest, clock and sender threads
and asyncio's executor each hold a mail batch at a time, so its RSS grew by tens of MB over
the first thousands of mails and kept creeping. One arena (Python allocates under the GIL
anyway, so there is little to contend for) and handing free pages back after a burst of work
keep it flat. Elsewhere than glibc (musl, macOS) both calls do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import cache

M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 1


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    return libc


def limit_arenas(count: int = ARENAS) -> bool:
    """Before the daemon starts its threads. An admin's MALLOC_ARENA_MAX wins."""
    libc = _libc()
    if libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, count))


def release_free_memory() -> None:
    """Return the allocator's free pages to the system (a few ms): after a burst of work,
    so a quiet daemon's RSS is what it uses, not what its busiest batch needed."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
