"""Processing runs pages into Parquet files: decode (unless the fetcher did), window, flatten,
write a row group per page into one file per table (kept open across tasks by the caller's
``writers`` until the task marked ``close``).

The runs export calls it in the process that fetched the pages (the caller or a worker process);
``process_pool`` starts those worker processes.
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
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

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
    close: bool = True  # the files' last pages: close them (else they stay open in ``writers``)


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


Writers = dict[str, pq.ParquetWriter]  # open files by path, kept between the tasks of a file


def process_chunk(task: ChunkTask, writers: Writers | None = None) -> ChunkResult:
    """Decode (unless done), window, flatten and write the task's pages, one page at a time: each page
    is a row group (or several, capped at ``row_group_rows``) of the files, so the memory this takes
    is a page's, whatever the file's size. With ``writers`` a file can take several tasks, in order:
    it is opened by the first that has rows for it and closed by the one marked ``close``."""
    writers = {} if writers is None else writers
    result = ChunkResult(rows=dict.fromkeys(task.files, 0))
    low, high = task.window
    fs = _filesystem(task.root)
    try:
        for content in task.pages:
            page = content if isinstance(content, Decoded) else decode_runs_page(content)
            result.received += len(page.items) + len(page.rejected)
            result.rejected.extend(page.rejected)
            result.unknown_fields += sum(1 for u in page.unknown or [] if u)
            # The API's bounds are inclusive and so are the windows; anything else belongs elsewhere.
            inside = [r.start_time is not None and low <= r.start_time <= high for r in page.items]
            items = list(itertools.compress(page.items, inside))
            unknown = list(itertools.compress(page.unknown, inside)) if page.unknown else None
            result.out_of_window += len(inside) - len(items)
            tables = {
                "runs": flatten_runs(items, task.exported_at, unknown if unknown and any(unknown) else None),
                "run_feedback_stats": flatten_run_feedback_stats(items, task.exported_at),
            }
            for name, table in tables.items():
                if table.num_rows:
                    path = task.files[name]
                    if path not in writers:  # a table with no rows gets no file
                        writers[path] = pq.ParquetWriter(
                            path, table.schema, filesystem=fs,
                            **parquet_writer_options(task.options, table.schema),  # type: ignore[arg-type]
                        )  # fmt: skip
                    writers[path].write_table(table, row_group_size=task.options.row_group_rows)
                    result.rows[name] += table.num_rows
    finally:
        if task.close:
            close_files(writers, task.files.values())
    return result


def close_files(writers: Writers, paths: Iterable[str]) -> None:
    """Close those of ``paths`` that are open (each writes its footer)."""
    for path in paths:
        writer = writers.pop(path, None)
        if writer is not None:
            writer.close()


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
