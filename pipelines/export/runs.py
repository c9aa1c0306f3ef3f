"""Exporting one daily partition of runs: time slices fetched concurrently, streamed to Parquet.

A cursor stream is sequential, so the day is cut into ``slices`` time windows per batch of projects,
fetched by at most ``concurrency`` threads sharing one client (and its rate limiter). Each stream
flushes every ``flush_rows`` records into its own file, so memory is bounded by concurrency x flush
size, never by the size of the day. File names depend only on (slice, batch): the output does not
depend on timing.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime

from pipelines.client import LangSmithClient
from pipelines.export.common import REJECTED, rejected_table, rfc3339_us, time_slices
from pipelines.flatten.runs import RUN_FEEDBACK_STATS, RUNS, flatten_run_feedback_stats, flatten_runs
from pipelines.pagination import CursorPaginator, prefetched
from pipelines.records import RUN_SELECTS, Rejected, RunV2, decode_runs_page
from pipelines.sink import ParquetSink, PartitionInfo, StagedPartition

log = logging.getLogger(__name__)

RUNS_QUERY_PATH = "/api/v2/runs/query"


@dataclass(frozen=True)
class RunsExportOptions:
    page_size: int = 1000
    slices: int = 4
    concurrency: int = 4
    flush_rows: int = 2_000
    project_batch: int = 100


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
) -> RunsExportResult:
    """Fetch every run that started on ``day`` (UTC) and replace the day's partitions of ``runs``,
    ``run_feedback_stats`` and ``_rejected``. Nothing replaces the old partitions unless the whole day
    was fetched and written."""
    opts = options or RunsExportOptions()
    value = day.isoformat()
    staged = {
        "runs": sink.begin("runs", RUNS, "start_date", value),
        "run_feedback_stats": sink.begin("run_feedback_stats", RUN_FEEDBACK_STATS, "start_date", value),
        "_rejected": sink.begin("_rejected", REJECTED, "source=runs/partition", value),
    }
    totals = _Totals()
    pages_before = client.stats.pages
    streams = [
        (s_index, b_index, window, batch)
        for b_index, batch in enumerate(_batches(project_ids, opts.project_batch))
        for s_index, window in enumerate(time_slices(day, opts.slices))
    ]
    try:
        with ThreadPoolExecutor(max_workers=max(1, opts.concurrency), thread_name_prefix="runs") as pool:
            futures = [
                pool.submit(
                    _export_stream, client, staged, day, s, b, window, batch, opts, exported_at, totals
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
    staged: dict[str, StagedPartition],
    day: date,
    slice_index: int,
    batch_index: int,
    window: tuple[datetime, datetime],
    project_ids: list[str],
    opts: RunsExportOptions,
    exported_at: datetime,
    totals: _Totals,
) -> None:
    body = {
        "project_ids": project_ids,
        "min_start_time": rfc3339_us(window[0]),
        "max_start_time": rfc3339_us(window[1]),
        "selects": list(RUN_SELECTS),
        "page_size": opts.page_size,
        "sort_order": "ASC",
    }
    file_name = f"part-{batch_index:03d}-{slice_index:03d}.parquet"
    label = f"{day} slice {slice_index} batch {batch_index} "
    buffer: list[RunV2] = []
    unknown: list[bytes | None] = []
    received = 0
    pages = CursorPaginator(client, RUNS_QUERY_PATH, body, label=label).pages(decode_runs_page)
    for page in prefetched(pages):
        received += len(page.items) + len(page.rejected)
        inside = [r.start_time is not None and window[0] <= r.start_time <= window[1] for r in page.items]
        kept = list(itertools.compress(page.items, inside))
        with totals.lock:
            totals.received += len(page.items) + len(page.rejected)
            totals.rejected.extend(page.rejected)
            totals.out_of_window += len(page.items) - len(kept)
            totals.unknown_fields += sum(1 for u in page.unknown or [] if u)
        if len(kept) != len(page.items):
            log.warning(
                "%s: %d runs outside the requested window were skipped", label, len(page.items) - len(kept)
            )
        buffer.extend(kept)
        unknown.extend(itertools.compress(page.unknown, inside) if page.unknown else [None] * len(kept))
        if len(buffer) >= opts.flush_rows:
            _flush(staged, file_name, buffer, unknown, exported_at)
            buffer, unknown = [], []
            log.info("%s: %d runs so far", label.strip(), received)
    _flush(staged, file_name, buffer, unknown, exported_at)


def _flush(
    staged: dict[str, StagedPartition],
    file_name: str,
    items: list[RunV2],
    unknown: list[bytes | None],
    exported_at: datetime,
) -> None:
    if not items:
        return
    staged["runs"].write(file_name, flatten_runs(items, exported_at, unknown if any(unknown) else None))
    staged["run_feedback_stats"].write(file_name, flatten_run_feedback_stats(items, exported_at))
