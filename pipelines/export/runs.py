"""Exporting one daily partition of runs: time slices fetched concurrently, streamed to Parquet.

A cursor stream is sequential, so the day is cut into ``slices`` time windows per batch of projects,
fetched by at most ``concurrency`` threads sharing one client (and its rate limiter); each stream
prefetches its next page while the current ones are processed. Every ``flush_rows`` runs of a stream
become one chunk, processed (decode, flatten, write one file per table) in the stream's thread or, with
``workers``, in a pool of processes so every core works. Memory is bounded by concurrency x chunk size,
never by the size of the day. File names depend only on (batch, slice, chunk): the output does not
depend on timing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime

from pipelines.client import LangSmithClient
from pipelines.export.chunks import ChunkResult, ChunkTask, process_chunk, process_pool
from pipelines.export.common import REJECTED, rejected_table, rfc3339_us, time_slices
from pipelines.flatten.runs import RUN_FEEDBACK_STATS, RUNS
from pipelines.memory import limit_malloc_arenas
from pipelines.pagination import CursorPaginator, prefetched
from pipelines.records import RUN_SELECTS, Rejected, decode_runs_envelope
from pipelines.sink import ParquetSink, PartitionInfo, StagedPartition

log = logging.getLogger(__name__)

RUNS_QUERY_PATH = "/api/v2/runs/query"
# Chunks queued for worker processes, over all streams, per worker (bounds the parent's memory).
CHUNKS_IN_FLIGHT_PER_WORKER = 2


@dataclass(frozen=True)
class RunsExportOptions:
    page_size: int = 1000
    slices: int = 4
    concurrency: int = 4
    flush_rows: int = 2_000
    project_batch: int = 100
    workers: int = 0  # processes that decode, flatten and write; 0: the fetching threads do it


@dataclass
class RunsExportResult:
    partition: str
    tables: dict[str, PartitionInfo]
    received: int = 0
    pages: int = 0
    rejected: int = 0
    out_of_window: int = 0
    unknown_fields: int = 0


@dataclass
class _Totals:
    # Chunks handed to worker processes and not finished yet, over all streams.
    slots: threading.BoundedSemaphore
    received: int = 0
    unknown_fields: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    out_of_window: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _batches(ids: Sequence[str], size: int) -> list[list[str]]:
    ordered = sorted(ids)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def export_runs_partition(
    client: LangSmithClient,
    sink: ParquetSink,
    day: date,
    project_ids: Sequence[str],
    *,
    exported_at: datetime,
    options: RunsExportOptions | None = None,
    pool: Executor | None = None,
) -> RunsExportResult:
    """Fetch every run that started on ``day`` (UTC) and replace the day's partitions of ``runs``,
    ``run_feedback_stats`` and ``_rejected``. Nothing replaces the old partitions unless the whole day
    was fetched and written. ``pool``: worker processes to reuse across partitions (else, with
    ``options.workers``, a pool is started for this call)."""
    opts = options or RunsExportOptions()
    limit_malloc_arenas()  # before the fetching threads start: see pipelines/memory.py
    value = day.isoformat()
    staged = {
        "runs": sink.begin("runs", RUNS, "start_date", value),
        "run_feedback_stats": sink.begin("run_feedback_stats", RUN_FEEDBACK_STATS, "start_date", value),
        "_rejected": sink.begin("_rejected", REJECTED, "source=runs/partition", value),
    }
    totals = _Totals(slots=threading.BoundedSemaphore(max(1, opts.workers) * CHUNKS_IN_FLIGHT_PER_WORKER))
    pages_before = client.stats.pages
    streams = [
        (s_index, b_index, window, batch)
        for b_index, batch in enumerate(_batches(project_ids, opts.project_batch))
        for s_index, window in enumerate(time_slices(day, opts.slices))
    ]
    try:
        with ExitStack() as stack:
            if pool is None and opts.workers > 0:
                pool = stack.enter_context(process_pool(opts.workers))
            threads = stack.enter_context(
                ThreadPoolExecutor(max_workers=max(1, opts.concurrency), thread_name_prefix="runs")
            )
            futures = [
                threads.submit(
                    _export_stream,
                    client,
                    sink,
                    staged,
                    day,
                    s,
                    b,
                    window,
                    batch,
                    opts,
                    exported_at,
                    totals,
                    pool,
                )
                for s, b, window, batch in streams
            ]
            for future in futures:
                future.result()
        if totals.rejected:
            staged["_rejected"].write(
                "part-00000.parquet", rejected_table("runs", totals.rejected, exported_at)
            )
        infos = {name: part.commit() for name, part in staged.items()}
    except BaseException:
        for part in staged.values():
            part.abort()
        raise
    return RunsExportResult(
        partition=value,
        tables=infos,
        received=totals.received,
        pages=client.stats.pages - pages_before,
        rejected=len(totals.rejected),
        out_of_window=totals.out_of_window,
        unknown_fields=totals.unknown_fields,
    )


def _export_stream(
    client: LangSmithClient,
    sink: ParquetSink,
    staged: dict[str, StagedPartition],
    day: date,
    slice_index: int,
    batch_index: int,
    window: tuple[datetime, datetime],
    project_ids: list[str],
    opts: RunsExportOptions,
    exported_at: datetime,
    totals: _Totals,
    pool: Executor | None,
) -> None:
    body = {
        "project_ids": project_ids,
        "min_start_time": rfc3339_us(window[0]),
        "max_start_time": rfc3339_us(window[1]),
        "selects": list(RUN_SELECTS),
        "page_size": opts.page_size,
        "sort_order": "ASC",
    }
    label = f"{day} slice {slice_index} batch {batch_index} "
    pages_per_chunk = max(1, opts.flush_rows // opts.page_size)
    in_flight: list[Future[ChunkResult]] = []
    chunk: list[bytes] = []
    chunks = 0

    def submit() -> None:
        nonlocal chunk, chunks
        name = f"part-{batch_index:03d}-{slice_index:03d}-{chunks:05d}.parquet"
        task = ChunkTask(
            pages=chunk,
            window=window,
            root=sink.root_uri,
            files={t: staged[t].file_path(name) for t in ("runs", "run_feedback_stats")},
            exported_at=exported_at,
            options=sink.options,
        )
        chunk, chunks = [], chunks + 1
        if pool is None:
            _account(staged, totals, process_chunk(task), label)
            return
        totals.slots.acquire()  # waits while the workers already have enough queued
        future = pool.submit(process_chunk, task)
        future.add_done_callback(lambda _: totals.slots.release())
        in_flight.append(future)

    pages = CursorPaginator(client, RUNS_QUERY_PATH, body, label=label).pages(decode_runs_envelope)
    for page in prefetched(pages):
        chunk.append(page.content)
        if len(chunk) >= pages_per_chunk:
            submit()
    if chunk:
        submit()
    for future in in_flight:
        _account(staged, totals, future.result(), label)


def _account(staged: dict[str, StagedPartition], totals: _Totals, result: ChunkResult, label: str) -> None:
    for table, rows in result.rows.items():
        staged[table].add_rows(rows)
    with totals.lock:
        totals.received += result.received
        totals.rejected.extend(result.rejected)
        totals.out_of_window += result.out_of_window
        totals.unknown_fields += result.unknown_fields
    if result.out_of_window:
        log.warning("%s: %d runs outside the requested window were skipped", label, result.out_of_window)
