"""Exporting one daily partition of runs: time slices fetched concurrently, streamed to Parquet.

A cursor stream is sequential, so the day is cut into ``slices`` time windows per batch of projects.
With ``workers`` the caller and each worker process open a client of their own (with an equal
share of the rate limit), take streams from the pool's shared queue on threads as they get free,
and decode, flatten and write them themselves, so no page crosses a process boundary; with
``workers=0`` the calling process does all of it alone, on its own client. Each page is handed
to the process's processing thread while the stream goes on fetching, and written (a row group)
into the stream's open file; every ``flush_rows`` runs of a stream make one file per table. Memory
is bounded by the pages read and waiting (a fixed number of places per processing thread, see
``_Processor``) and those being processed, not by the concurrency, the size of the day or of the
files. File names depend only on (batch, slice, file): the output does not depend on timing.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

from pipelines.client import ClientSettings, LangSmithClient
from pipelines.export.chunks import (
    ChunkResult,
    ChunkTask,
    StreamQueue,
    WorkerPool,
    Writers,
    close_files,
    process_chunk,
    process_pool,
    shared_streams,
)
from pipelines.export.common import REJECTED, rejected_table, rfc3339_us, time_slices
from pipelines.flatten.runs import RUN_FEEDBACK_STATS, RUNS
from pipelines.memory import fewer_collections, tune_memory
from pipelines.pagination import CursorPaginator
from pipelines.records import RUN_SELECTS, Decoded, Rejected, RunV2, decode_runs_page
from pipelines.sink import ParquetOptions, ParquetSink, PartitionInfo

log = logging.getLogger(__name__)
T = TypeVar("T")

RUNS_QUERY_PATH = "/api/v2/runs/query"
# Chunks decoded, flattened and written at once by one process: the work holds the GIL for much of
# the time, so more would only add memory; fetching threads go on meanwhile. In the calling process
# (``workers=0``) two, so compression (which releases the GIL) overlaps the next chunk's decoding.
PROCESSING_PER_WORKER = 1
PROCESSING_IN_CALLER = 2
# Pages a lane may have read and waiting for its processing, per processing thread: with the pages
# being processed, the lane's memory besides its open files, whatever the concurrency (see _Processor).
PAGES_WAITING_PER_PROCESSING = 8
_TABLES = ("runs", "run_feedback_stats")


@dataclass(frozen=True)
class RunsExportOptions:
    page_size: int = 1000
    slices: int = 32
    concurrency: int = 32
    flush_rows: int = 10_000  # runs per file: see _Processor
    project_batch: int = 100
    workers: int = 0  # processes that fetch, decode, flatten and write slices besides the caller


@dataclass
class RunsExportResult:
    partition: str
    tables: dict[str, PartitionInfo]
    received: int = 0
    pages: int = 0
    rejected: int = 0
    out_of_window: int = 0
    unknown_fields: int = 0


@dataclass(frozen=True)
class _Stream:
    slice_index: int
    batch_index: int
    window: tuple[datetime, datetime]
    project_ids: list[str]


@dataclass(frozen=True)
class _Lane:
    """Streams fetched and processed by one process (picklable: sent to a worker process)."""

    day: date
    token: str  # this export's mark on the streams it puts in the queue
    streams: list[_Stream]  # every stream of the partition; each taken by index from the queue
    threads: int
    processing: int
    page_size: int
    flush_rows: int
    root: str  # the sink root (path or URI): a worker process opens its own filesystem
    dirs: dict[str, str]  # table -> folder of the staged partition (within the root's filesystem)
    options: ParquetOptions
    exported_at: datetime
    client: ClientSettings | None  # None: the lane runs in the caller, on the caller's client


@dataclass
class _LaneResult:
    received: int = 0
    out_of_window: int = 0
    unknown_fields: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_TABLES, 0))
    # what a worker's own client did (zero in the caller, whose client counts for itself)
    requests: int = 0
    retries: int = 0
    pages: int = 0
    bytes_received: int = 0

    def add(self, part: ChunkResult | _LaneResult, lock: threading.Lock | None = None) -> None:
        """Count a processed chunk (or a whole lane) in."""
        with lock or nullcontext():
            self.received += part.received
            self.out_of_window += part.out_of_window
            self.unknown_fields += part.unknown_fields
            self.rejected.extend(part.rejected)
            for table, rows in part.rows.items():
                self.rows[table] += rows


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
    pool: WorkerPool | None = None,
) -> RunsExportResult:
    """Fetch every run that started on ``day`` (UTC) and replace the day's partitions of ``runs``,
    ``run_feedback_stats`` and ``_rejected``. Nothing replaces the old partitions unless the whole day
    was fetched and written. ``pool``: ``options.workers`` worker processes to reuse across partitions
    (else, with ``options.workers``, a pool is started for this call)."""
    opts = options or RunsExportOptions()
    tune_memory()  # before any thread starts: see pipelines/memory.py
    value = day.isoformat()
    staged = {
        "runs": sink.begin("runs", RUNS, "start_date", value),
        "run_feedback_stats": sink.begin("run_feedback_stats", RUN_FEEDBACK_STATS, "start_date", value),
        "_rejected": sink.begin("_rejected", REJECTED, "source=runs/partition", value),
    }
    streams = [
        _Stream(s, b, window, batch)
        for b, batch in enumerate(_batches(project_ids, opts.project_batch))
        for s, window in enumerate(time_slices(day, opts.slices))
    ]
    pages_before = client.stats.pages
    try:
        dirs = {t: staged[t].writable_dir() for t in _TABLES}
        with fewer_collections():
            lane_results = _run_lanes(client, sink, dirs, day, streams, opts, exported_at, pool)
        total = _LaneResult()
        for result in lane_results:
            total.add(result)
        for table, rows in total.rows.items():
            staged[table].add_rows(rows)
        if total.rejected:
            staged["_rejected"].write(
                "part-00000.parquet", rejected_table("runs", total.rejected, exported_at)
            )
        infos = {name: part.commit() for name, part in staged.items()}
    except BaseException:
        for part in staged.values():
            part.abort()
        raise
    if total.out_of_window:
        log.warning("%s: %d runs outside the requested windows were skipped", day, total.out_of_window)
    return RunsExportResult(
        partition=value,
        tables=infos,
        received=total.received,
        pages=client.stats.pages - pages_before,
        rejected=len(total.rejected),
        out_of_window=total.out_of_window,
        unknown_fields=total.unknown_fields,
    )


def _run_lanes(
    client: LangSmithClient,
    sink: ParquetSink,
    dirs: dict[str, str],
    day: date,
    streams: list[_Stream],
    opts: RunsExportOptions,
    exported_at: datetime,
    pool: WorkerPool | None,
) -> list[_LaneResult]:
    """Run the streams in the caller (one lane) or in the worker processes, which take them from the
    pool's shared queue as they get free: a slow worker or a busy hour does not hold the rest up."""
    if not streams:  # no projects to export
        return []
    token = uuid.uuid4().hex

    def lane(threads: int, processing: int, settings: ClientSettings | None) -> _Lane:
        return _Lane(
            day, token, streams, threads, processing, opts.page_size, opts.flush_rows, sink.root_uri,
            dirs, sink.options, exported_at, settings,
        )  # fmt: skip

    def hand_out(to: StreamQueue, threads: int) -> None:
        for index in range(len(streams)):
            to.put((token, index))
        for _ in range(threads):
            to.put((token, None))

    if opts.workers <= 0:
        threads = max(1, min(opts.concurrency, len(streams)))
        local: queue.Queue[tuple[str, int | None]] = queue.Queue()
        hand_out(local, threads)
        return [run_lane(lane(threads, PROCESSING_IN_CALLER, None), client, local)]
    if client.settings is None:
        raise ValueError("worker processes need a client that can be reopened (no custom transport)")
    # The caller is a lane too (it would only wait otherwise): ``workers`` processes besides it.
    lanes = min(opts.workers + 1, len(streams))
    per_lane = max(1, -(-min(opts.concurrency, len(streams)) // lanes))
    task = lane(per_lane, PROCESSING_PER_WORKER, client.settings.share(lanes))
    with ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(process_pool(opts.workers))
        hand_out(pool.streams, lanes * per_lane)
        futures = [pool.submit(run_lane, task) for _ in range(lanes - 1)]
        here: Future[_LaneResult] = Future()
        try:  # on a client of its own, with the same share of the rate limit as each worker
            here.set_result(run_lane(task, None, pool.streams))
        except BaseException as exc:  # reported with the workers' outcomes, once they are done
            here.set_exception(exc)
        results, errors = _gather([*futures, here])  # a worker's error first: it came from afar
    for result in results:  # what the workers' own clients did counts as this client's work
        client.stats.add(
            requests=result.requests, retries=result.retries, pages=result.pages,
            bytes_received=result.bytes_received,
        )  # fmt: skip
    if errors:
        raise errors[0]
    return results


def _gather(futures: list[Future[T]]) -> tuple[list[T], list[BaseException]]:
    """Every outcome, waiting for all: a failed stream or lane does not leave others writing behind
    our back while the partition is aborted."""
    results: list[T] = []
    errors: list[BaseException] = []
    for future in futures:
        try:
            results.append(future.result())
        except BaseException as exc:  # re-raised by the caller once all are done
            errors.append(exc)
    return results, errors


def run_lane(
    lane: _Lane, client: LangSmithClient | None = None, streams: StreamQueue | None = None
) -> _LaneResult:
    """Fetch and process streams on ``lane.threads`` threads, each taking the next stream from the
    queue until it gets its end mark. Without ``client``: a client of its own, opened from
    ``lane.client`` (its requests are counted in the result); without ``streams`` (in a worker
    process): the pool's shared queue."""
    result = _LaneResult()
    work = streams if streams is not None else shared_streams()

    def take_streams(client: LangSmithClient, processor: _Processor) -> None:
        while True:
            token, index = work.get()
            if token != lane.token:  # left over by an export that failed: not ours
                continue
            if index is None:
                return
            _export_stream(client, lane, lane.streams[index], processor)

    with ExitStack() as stack:
        own = client is None
        if own:  # a lane beside the worker processes (malloc was tuned at their start)
            assert lane.client is not None
            client = stack.enter_context(lane.client.open())
        assert client is not None
        waiting = PAGES_WAITING_PER_PROCESSING * lane.processing
        processor = _Processor(lane.processing, result, waiting=waiting)
        errors: list[BaseException] = []
        try:
            with ThreadPoolExecutor(lane.threads, thread_name_prefix="runs") as threads:
                futures = [threads.submit(take_streams, client, processor) for _ in range(lane.threads)]
                errors = _gather(futures)[1]
        finally:  # whatever happened, no chunk is still being written when this returns
            errors += processor.finish()
        if errors:
            raise errors[0]
        if own:
            stats = client.stats
            result.requests, result.retries = stats.requests, stats.retries
            result.pages, result.bytes_received = stats.pages, stats.bytes_received
    return result


class _Processor:
    """Processes a lane's pages on ``slots`` threads while the fetching threads go on. A fetching
    thread takes a place among the ``waiting`` pages once its response is in and before it reads
    the body (``reserve``), hands the page over with it (``submit``) and fetches on; the place is
    given back when the processing takes the page up. So a lane holds at most ``waiting`` pages
    besides those being processed, however many threads fetch: a thread beyond them waits with
    its response's headers in and the body left in the connection (a connection, not a page).

    That lets the concurrency go up without the memory. On the benchmark's day at 300 ms, 16 at a
    time make 4 round trips per fetching thread, and fetching alone (no processing) took 1.84-1.93 s
    of an export's 1.92-1.98 s: the day was bound by round trips. 32 at a time (2 round trips)
    with 8 places per lane: median 2.08 -> 1.99 s (10 interleaved pairs). Before, a place was taken
    only when the page was read, so a lane held up to a page per fetching thread besides its
    ``waiting``, and each thread kept its last page (in its loop and in the paginator) until the
    next one came: a 500,000-run day (no latency) peaked at 404-437 MB in the caller and 375-395
    in the worker; with places taken before the body and no page kept, 348-368 and 314-334 MB,
    though ~5% slower (median 13.5 against 12.8 s, 4 pairs; more CPU with 16 fetching threads per
    lane than with 8). With no latency 32 at a time are slower than 16 on a small day too (1.42
    against 1.27 s on 50,000 runs, 5 runs each): every slice is taken by a thread at the start, so
    a process that runs ahead cannot take more.

    Every slice starts at once, so the first pages of all of them arrive together; processing
    each page as it comes (not in 2-page chunks) started the processing ~0.3 s sooner at 300 ms.
    A file's size does not count (its pages are written as they come, into the open file).

    A file takes several tasks, one at a time and in the order they were handed over: a task for
    a file that is being written waits in that file's queue (holding its place among the
    ``waiting``) and goes to the threads when the one before it is done, so no processing thread
    sits idle behind another file's page."""

    def __init__(self, slots: int, result: _LaneResult, *, waiting: int) -> None:
        self._pool = ThreadPoolExecutor(slots, thread_name_prefix="process")
        self._waiting = threading.BoundedSemaphore(waiting)
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self._result = result
        self._writers: Writers = {}  # the lane's open files
        self._files: dict[str, collections.deque[tuple[ChunkTask, str]]] = {}  # being written: next
        self._unfinished = 0  # tasks handed over and not done (in a file's queue included)
        self._all_done = threading.Condition(self._lock)

    def reserve(self) -> None:
        """Take a place among the ``waiting`` pages (blocks while they are all taken); raises the
        lane's error once a page failed: fetching more would be for nothing."""
        self._waiting.acquire()
        if self._errors:
            self._waiting.release()
            raise self._errors[0]

    def unreserve(self) -> None:
        """Give back a place whose page will not be handed over (its stream failed)."""
        self._waiting.release()

    def submit(self, task: ChunkTask, label: str) -> None:
        """Queue ``task``, which holds a place taken with ``reserve``, behind the tasks of its file
        before it; the place is given back when the processing takes the task up."""
        key = task.files["runs"]
        with self._lock:
            self._unfinished += 1
            if key in self._files:  # the file is being written: after the task before
                self._files[key].append((task, label))
                return
            self._files[key] = collections.deque()
        self._pool.submit(self._process, task, label)

    def _process(self, task: ChunkTask, label: str) -> None:
        self._waiting.release()  # taken up: the next page may wait
        try:
            if not self._errors:  # else the lane fails: no more writing into files it will not publish
                finished = process_chunk(task, self._writers)
                self._result.add(finished, self._lock)
                if finished.out_of_window:
                    log.info("%s: %d runs outside the window were skipped", label, finished.out_of_window)
        except BaseException as exc:
            with self._lock:
                self._errors.append(exc)
        finally:
            key = task.files["runs"]
            with self._lock:
                queued = self._files[key]
                following = queued.popleft() if queued else None
                if following is None:
                    del self._files[key]
                self._unfinished -= 1
                if not self._unfinished:
                    self._all_done.notify_all()
            if following is not None:  # still unfinished: the pool is not shut down before it
                self._pool.submit(self._process, *following)

    def finish(self) -> list[BaseException]:
        """Wait for every page handed over and close what files a failure left open; the errors."""
        with self._all_done:
            self._all_done.wait_for(lambda: not self._unfinished)
        self._pool.shutdown(wait=True)
        try:
            close_files(self._writers, list(self._writers))
        except Exception as exc:  # its partition is not published without every file closed
            self._errors.append(exc)
        return self._errors


def _export_stream(client: LangSmithClient, lane: _Lane, stream: _Stream, processor: _Processor) -> None:
    body = {
        "project_ids": stream.project_ids,
        "min_start_time": rfc3339_us(stream.window[0]),
        "max_start_time": rfc3339_us(stream.window[1]),
        "selects": list(RUN_SELECTS),
        "page_size": lane.page_size,
        "sort_order": "ASC",
    }
    label = f"{lane.day} slice {stream.slice_index} batch {stream.batch_index} "
    files = 0  # files of this stream begun so far
    in_file = 0  # pages of the current file handed over

    # Each page is decoded once, where it is fetched (a truncated body fails there and is retried),
    # and handed over on its own: it is written into its file as it comes, so no page waits for
    # the next one to make up a chunk. No page is fetched ahead: the next request leaves at once
    # anyway (a prefetching thread per stream only added threads to switch between and a page to
    # hold). Its place among the lane's waiting pages is taken once its response is in, before its
    # body is read, so fetching threads beyond those places cost a connection, not a page.
    place = _Place(processor)
    paginator = CursorPaginator(client, RUNS_QUERY_PATH, body, label=label, before_body=place.take)
    try:
        for page in paginator.pages(decode_runs_page):
            place.take()  # taken before its body was read (a page comes with one)
            files, in_file = _hand_over(lane, stream, processor, page, files, in_file, label)
            place.held = False  # the task holds it now
            del page  # nor is it held here while the next one is fetched
    finally:
        if place.held:  # a body read (and perhaps retried) that is not handed over: the stream failed
            processor.unreserve()


class _Place:
    """A stream's place among its lane's waiting pages, taken before a page's body is read."""

    def __init__(self, processor: _Processor) -> None:
        self._processor = processor
        self.held = False

    def take(self) -> None:
        if not self.held:  # a retried body keeps the place it had
            self._processor.reserve()
            self.held = True


def _hand_over(
    lane: _Lane, stream: _Stream, processor: _Processor, page: Decoded[RunV2], files: int, in_file: int,
    label: str,
) -> tuple[int, int]:  # fmt: skip
    """Hand a page over to be written into its file; (files begun, pages in the current file)."""
    pages_per_file = max(1, lane.flush_rows // lane.page_size)
    name = f"part-{stream.batch_index:03d}-{stream.slice_index:03d}-{files:05d}.parquet"
    in_file += 1
    last = in_file >= pages_per_file or not page.next_cursor
    task = ChunkTask(
        pages=[page],
        window=stream.window,
        root=lane.root,
        files={t: f"{lane.dirs[t]}/{name}" for t in _TABLES},
        exported_at=lane.exported_at,
        options=lane.options,
        close=last,
    )
    processor.submit(task, label)
    return (files + 1, 0) if last else (files, in_file)
