"""Keeping a thread-heavy export's memory flat: glibc malloc settings.

glibc gives threads their own malloc arenas (up to 8 per core); pages of several MB allocated and
freed across many fetching threads fragment them, and the process keeps the freed memory. Measured
with the benchmark on a 500,000-run day: 624 MB peak in the parent and 323 MB per worker with the
default, 534 MB and 259 MB with two arenas.

Blocks of several MB (a runs page, a chunk's joined JSON text) are also mapped on their own and
given back when freed: glibc's threshold for that starts at 128 KB but rises to the size of every
such block freed, so after the first page every page came from the arenas and fragmented them.
Fixed at 4 MB: 16 threads per process on a 500,000-run day peaked at ~540 MB per process without it
and ~445 MB with it, at the same speed (smaller blocks stay in the arenas: mapping fresh memory for
every 1 MB piece of a response was ~15% slower). Only glibc has ``mallopt``; elsewhere this does
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD = 4 << 20


def tune_malloc(arenas: int = 2, mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    """Cap the malloc arenas of this process (arenas made from now on) and map blocks of
    ``mmap_threshold`` bytes and more on their own; True where it applied."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        capped = bool(libc.mallopt(M_ARENA_MAX, arenas))
        return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and capped
    except (OSError, AttributeError):  # not glibc
        log.debug("mallopt is not available here", exc_info=True)
        return False
