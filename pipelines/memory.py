"""Keeping a thread-heavy export's memory flat and its allocations cheap: glibc malloc settings,
Arrow allocating from the same tuned malloc, and fewer garbage collections while an export runs.

glibc gives threads their own malloc arenas (up to 8 per core); pages of several MB allocated and
freed across many fetching threads fragment them, and the process keeps the freed memory. Measured
with the benchmark on a 500,000-run day: 624 MB peak in the parent and 323 MB per worker with the
default, 534 MB and 259 MB with two arenas.

Fresh memory costs CPU: the kernel zeroes every page on first touch (2 MB at a time where it backs
memory with huge pages). With blocks mapped on their own from 4 MB and the heap trimmed back to the
OS whenever 128 KB were free at its top, and Arrow on its bundled mimalloc (which also gives memory
back and maps it anew), a 50,000-run export took ~290,000 page faults and zeroing pages was ~15% of
its CPU (perf). So:

- blocks from 16 MB are mapped on their own (a runs page of 1000 ~7 KB runs, and the pieces of a
  response, stay in the arenas; an outsized page does not);
- the heap is given back only when 32 MB are free at its top;
- Arrow allocates from this malloc, not mimalloc.

Measured in one invocation (50,000 runs, 0 ms, 5 runs each): page faults 287,000 -> 149,000 (the
~37,000 of start-up included), system CPU 1.34 -> 0.61 s, median 2.53 -> 2.25 s; a 500,000-run day
28.7 -> 21.0 s with peak RSS 405 -> 440 MB in the caller and 396 -> 388 MB in the worker. (glibc's
own dynamic threshold is no answer: it rises to the largest block freed and then fragments the
arenas, ~540 MB per process on that day.) Only glibc has ``mallopt``; elsewhere this does nothing.

Python's cyclic garbage collector runs every 700 net container allocations (a decoded run has two
lists) and, every tenth time, walks everything that survived: the pages that wait in chunks. That
was ~7% of an export's CPU (perf) for no garbage: the runs path makes no reference cycles (since
httpx's response/stream cycle is broken in ``pipelines.client``; before that, collecting less often
let responses pile up: 1.2-1.3 GB per process on a 500,000-run day). During an export the first
threshold is 10,000 (worker processes keep it). Two invocations, 6 runs each, 50,000 runs at 300 ms:
median 3.12 -> 2.80 s and 3.20 -> 3.08 s; a 500,000-run day peaked at 498 and 415 MB (447-490 and
410-416 MB without it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

log = logging.getLogger(__name__)

# from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 16 << 20
TRIM_THRESHOLD = 32 << 20
GC_THRESHOLD = 10_000  # Python's default is 700


def tune_memory(arenas: int = 2) -> bool:
    """Cap the malloc arenas of this process (arenas made from now on), set when malloc maps blocks
    on their own and gives its heap back, and have Arrow allocate from it; True where it applied
    (glibc). Process-wide; harmless to call again."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        applied = all(
            libc.mallopt(option, value) == 1
            for option, value in (
                (M_ARENA_MAX, arenas),
                (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            )
        )
    except (OSError, AttributeError):  # not glibc
        log.debug("mallopt is not available here", exc_info=True)
        return False
    if applied:
        pa.set_memory_pool(pa.system_memory_pool())
    return applied


_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect garbage less often while the block runs (process-wide: the thresholds in force when
    the first of overlapping blocks began are restored when the last one ends)."""
    global _gc_users, _gc_saved
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(GC_THRESHOLD, _gc_saved[0]), *_gc_saved[1:])
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_saved is not None:
                gc.set_threshold(*_gc_saved)
