"""A lane's processing thread: chunks are handed over without waiting while fewer than ``waiting``
wait (memory stays bounded), about a page per fetching thread; a failed chunk fails the lane."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime
from typing import Any

import pytest

import pipelines.export.runs as runs
from pipelines.export.chunks import ChunkResult
from pipelines.sink import ParquetOptions


def test_handed_over_chunks_do_not_wait_until_waiting_are_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    started: list[Any] = []

    def slow(task: Any) -> ChunkResult:
        started.append(task)
        release.wait(5)
        return ChunkResult(received=task, rows={"runs": task, "run_feedback_stats": 0})

    monkeypatch.setattr(runs, "process_chunk", slow)
    result = runs._LaneResult()
    processor = runs._Processor(1, result, waiting=2)
    processor.submit(10, "a")  # type: ignore[arg-type]
    while not started:  # taken up by the processing thread
        time.sleep(0.01)
    processor.submit(20, "b")  # type: ignore[arg-type]  # wait their turn; the caller goes on
    processor.submit(30, "c")  # type: ignore[arg-type]
    fourth = threading.Thread(target=processor.submit, args=(40, "d"))
    fourth.start()
    fourth.join(0.3)
    assert fourth.is_alive()  # two chunks already wait: the fourth is held back
    assert started == [10]
    release.set()
    fourth.join(5)
    assert processor.finish() == []
    assert started == [10, 20, 30, 40]
    assert (result.received, result.rows["runs"]) == (100, 100)


@pytest.mark.parametrize(
    ("threads", "flush_rows", "expected"),
    [(8, 1000, 8), (8, 2000, 4), (16, 1000, 16), (1, 5000, 1), (8, 500, 8)],
)
def test_about_a_page_per_fetching_thread_may_wait(threads: int, flush_rows: int, expected: int) -> None:
    lane = runs._Lane(
        date(2026, 1, 1), "t", [], threads, 1, 1000, flush_rows, "/tmp", {}, ParquetOptions(),
        datetime(2026, 1, 2, tzinfo=UTC), None,
    )  # fmt: skip
    assert runs.waiting_chunks(lane) == expected


def test_a_failed_chunk_fails_the_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(task: Any) -> ChunkResult:
        raise OSError("disk full")

    monkeypatch.setattr(runs, "process_chunk", broken)
    processor = runs._Processor(1, runs._LaneResult(), waiting=1)
    processor.submit(1, "a")  # type: ignore[arg-type]
    deadline = time.monotonic() + 5
    with pytest.raises(OSError, match="disk full"):  # no more fetching for a lane that failed
        while time.monotonic() < deadline:
            processor.submit(2, "b")  # type: ignore[arg-type]
            time.sleep(0.01)
    errors = processor.finish()
    assert errors and all(isinstance(e, OSError) for e in errors)
