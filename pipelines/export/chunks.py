"""Processing a chunk of runs pages into Parquet files: decode (unless the fetcher did), window,
flatten, write one file per table.

A pure function of its task: the runs export calls it in the process that fetched the pages (the
caller or a worker process); ``process_pool`` starts those worker processes.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import itertools
import logging
import logging.handlers
import multiprocessing
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipelines.client import tls_context
from pipelines.flatten.runs import flatten_run_feedback_stats, flatten_runs
from pipelines.memory import GC_THRESHOLD, tune_memory
from pipelines.records import Decoded, Rejected, RunV2, decode_runs_page
from pipelines.sink import ParquetOptions, parquet_writer_options, resolve_root


@dataclass(frozen=True)
class ChunkTask:
    pages: Sequence[bytes | Decoded[RunV2]]  # runs pages, as received or already decoded
    window: tuple[datetime, datetime]
    root: str  # the sink root (path or URI): a worker process opens its own filesystem
    files: dict[str, str]  # table -> path of the file to write (within the root's filesystem)
    exported_at: datetime
    options: ParquetOptions


@dataclass
class ChunkResult:
    received: int = 0
    out_of_window: int = 0
    unknown_fields: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


@lru_cache(maxsize=4)
def _filesystem(root: str) -> pafs.FileSystem:
    return resolve_root(root)[0]


def _write(fs: pafs.FileSystem, path: str, table: pa.Table, options: ParquetOptions) -> None:
    if table.num_rows:
        pq.write_table(
            table,
            path,
            filesystem=fs,
            row_group_size=options.row_group_rows,
            **parquet_writer_options(options, table.schema),  # type: ignore[arg-type]
        )


def process_chunk(task: ChunkTask) -> ChunkResult:
    result = ChunkResult()
    items: list[RunV2] = []
    unknown: list[bytes | None] = []
    low, high = task.window
    for content in task.pages:
        page = content if isinstance(content, Decoded) else decode_runs_page(content)
        result.received += len(page.items) + len(page.rejected)
        result.rejected.extend(page.rejected)
        result.unknown_fields += sum(1 for u in page.unknown or [] if u)
        # The API's bounds are inclusive and so are the windows; anything else belongs elsewhere.
        inside = [r.start_time is not None and low <= r.start_time <= high for r in page.items]
        items.extend(itertools.compress(page.items, inside))
        unknown.extend(itertools.compress(page.unknown, inside) if page.unknown else [None] * sum(inside))
        result.out_of_window += len(inside) - sum(inside)
    fs = _filesystem(task.root)
    runs = flatten_runs(items, task.exported_at, unknown if any(unknown) else None)
    stats = flatten_run_feedback_stats(items, task.exported_at)
    _write(fs, task.files["runs"], runs, task.options)
    _write(fs, task.files["run_feedback_stats"], stats, task.options)
    result.rows = {"runs": runs.num_rows, "run_feedback_stats": stats.num_rows}
    return result


# Library code logs under this logger; worker processes send its records to the caller, where they
# reach the same handlers (Dagster's event log included) as the caller's own.
_LOGGER = "pipelines"


# Work handed out while it is done: (export token, index of a stream, or None: no more for a thread).
StreamQueue = Any  # a multiprocessing.Queue[tuple[str, int | None]] (or queue.Queue in one process)
_shared_streams: StreamQueue | None = None


def shared_streams() -> StreamQueue:
    """In a worker process: the queue its pool hands streams out through."""
    assert _shared_streams is not None, "not in a worker process of process_pool"
    return _shared_streams


def _start_worker(
    records: multiprocessing.Queue[logging.LogRecord | None], level: int, streams: StreamQueue
) -> None:
    global _shared_streams
    _shared_streams = streams
    tune_memory()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])  # a worker only exports: see pipelines/memory.py
    logger = logging.getLogger(_LOGGER)
    logger.addHandler(logging.handlers.QueueHandler(records))
    logger.setLevel(level)
    logger.propagate = False
    importlib.import_module("pipelines.export.runs")  # what every lane needs, loaded before the first
    tls_context()  # as is the TLS context of the lane's client (it would delay the first requests)
    atexit.register(_exit_at_once)


def _exit_at_once() -> None:
    """A worker process's last step: by the time the interpreter exits, multiprocessing has sent
    its results and log records, its threads are done and every file is closed; what remains is
    tearing down modules and freeing ~300 MB object by object (60-80 ms that the export waits for
    when the pool shuts down). A pool worker always exits 0 (its tasks' errors go to the caller)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _forward(records: multiprocessing.Queue[logging.LogRecord | None]) -> None:
    while (record := records.get()) is not None:
        logging.getLogger(record.name).handle(record)


class WorkerPool(ProcessPoolExecutor):
    """A process pool whose workers' log records are handled in this process, and whose workers take
    streams from one shared queue (``streams``): whichever is free takes the next one."""

    def __init__(self, workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.streams: StreamQueue = context.Queue()
        self._records: multiprocessing.Queue[logging.LogRecord | None] = context.Queue()
        level = logging.getLogger(_LOGGER).getEffectiveLevel()
        super().__init__(
            max_workers=workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(self._records, level, self.streams),
        )
        self._forwarder = threading.Thread(
            target=_forward, args=(self._records,), name="worker-logs", daemon=True
        )
        self._forwarder.start()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
        if wait:  # the workers are gone: nothing more will come
            self._records.put(None)
            self._forwarder.join()


def process_pool(workers: int) -> WorkerPool:
    """Worker processes for the runs export; spawned, not forked (the parent runs threads).

    They are started at once, so they load their modules while the caller does other work (e.g.
    fetches the sessions), not when the first day is handed out; what they log is handled here."""
    pool = WorkerPool(workers)
    pool.submit(int)  # a no-op: spawning starts with the first task
    return pool
