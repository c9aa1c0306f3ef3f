"""A chunk of raw pages becomes one file per table, windowed, with the row-group cap honoured."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.export.chunks import ChunkTask, process_chunk
from pipelines.sink import ParquetOptions


def page(ids: range, day: int) -> bytes:
    items = b",".join(b'{"id": "r%d", "start_time": "2024-01-%02dT12:00:00Z"}' % (i, day) for i in ids)
    return b'{"items": [' + items + b"]}"


def test_a_chunk_is_windowed_and_written_in_capped_row_groups(tmp_path: Path) -> None:
    window = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 23, 59, 59, 999999, tzinfo=UTC))
    task = ChunkTask(
        pages=[page(range(0, 6), 1), page(range(6, 10), 1), page(range(10, 12), 2)],
        window=window,
        root=str(tmp_path),
        files={"runs": str(tmp_path / "runs.parquet"), "run_feedback_stats": str(tmp_path / "stats.parquet")},
        exported_at=datetime(2024, 2, 1, tzinfo=UTC),
        options=ParquetOptions(row_group_rows=4),
    )
    result = process_chunk(task)
    assert (result.received, result.out_of_window, result.rows["runs"]) == (12, 2, 10)
    written = pq.ParquetFile(tmp_path / "runs.parquet")
    assert written.num_row_groups == 3
    assert sorted(written.read(columns=["id"]).column("id").to_pylist()) == sorted(f"r{i}" for i in range(10))
    assert not (tmp_path / "stats.parquet").exists()  # no feedback stats, no empty file


def test_a_file_takes_several_tasks_while_its_writer_stays_open(tmp_path: Path) -> None:
    window = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 23, 59, 59, 999999, tzinfo=UTC))
    files = {"runs": str(tmp_path / "runs.parquet"), "run_feedback_stats": str(tmp_path / "stats.parquet")}
    writers: dict[str, pq.ParquetWriter] = {}
    common = {"window": window, "root": str(tmp_path), "files": files, "options": ParquetOptions()}
    at = datetime(2024, 2, 1, tzinfo=UTC)
    first = process_chunk(
        ChunkTask(pages=[page(range(0, 3), 1)], exported_at=at, close=False, **common), writers
    )
    assert list(writers) == [files["runs"]]  # open: the file is not finished
    second = process_chunk(ChunkTask(pages=[page(range(3, 5), 1)], exported_at=at, **common), writers)
    assert writers == {}
    assert (first.rows["runs"], second.rows["runs"]) == (3, 2)
    written = pq.ParquetFile(tmp_path / "runs.parquet")
    assert written.num_row_groups == 2  # a page each
    assert written.read(columns=["id"]).column("id").to_pylist() == [f"r{i}" for i in range(5)]


def log_many(n: int) -> int:
    """Run in a worker process: log ``n`` records, the last thing it does before it exits."""
    for i in range(n):
        logging.getLogger("pipelines.test").info("record %d", i)
    return os.getpid()


def test_a_worker_that_exits_at_once_loses_no_result_or_log_record(caplog: pytest.LogCaptureFixture) -> None:
    """Worker processes skip the interpreter's teardown on exit: what they sent must all arrive (a
    record cut off mid-write would leave the caller waiting for its end: hence the thread)."""
    import multiprocessing
    import threading

    from pipelines.export.chunks import process_pool

    caplog.set_level(logging.INFO, logger="pipelines")
    seen: dict[str, object] = {}

    def run() -> None:
        with process_pool(1) as pool:
            seen["pid"] = pool.submit(log_many, 2_000).result()
            seen["workers"] = list(multiprocessing.active_children())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the pool did not shut down: a worker's last messages were cut off"
    assert [r.getMessage() for r in caplog.records if r.name == "pipelines.test"] == [
        f"record {i}" for i in range(2_000)
    ]
    worker = next(p for p in seen["workers"] if p.pid == seen["pid"])  # type: ignore[attr-defined]
    assert worker.exitcode == 0
