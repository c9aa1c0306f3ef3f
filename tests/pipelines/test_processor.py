"""A lane's processing threads: pages are handed over without waiting while fewer than ``waiting``
wait (memory stays bounded), a file's pages are written in order, a failed page fails the lane and
a file it left open is closed."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import pipelines.export.runs as runs
from pipelines.export.chunks import ChunkResult


class Task:
    """What the processor needs of a task: its files (a task's file is its identity here)."""

    def __init__(self, name: Any, file: str) -> None:
        self.name = name
        self.files = {"runs": file}


def test_handed_over_chunks_do_not_wait_until_waiting_are_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    started: list[Any] = []

    def slow(task: Any, writers: Any) -> ChunkResult:
        started.append(task.name)
        release.wait(5)
        return ChunkResult(received=task.name, rows={"runs": task.name, "run_feedback_stats": 0})

    monkeypatch.setattr(runs, "process_chunk", slow)
    result = runs._LaneResult()
    processor = runs._Processor(1, result, waiting=2)
    processor.submit(Task(10, "f10"), "a")  # type: ignore[arg-type]
    while not started:  # taken up by the processing thread
        time.sleep(0.01)
    processor.submit(Task(20, "f20"), "b")  # type: ignore[arg-type]  # wait their turn; the caller goes on
    processor.submit(Task(30, "f30"), "c")  # type: ignore[arg-type]
    fourth = threading.Thread(target=processor.submit, args=(Task(40, "f40"), "d"))
    fourth.start()
    fourth.join(0.3)
    assert fourth.is_alive()  # two chunks already wait: the fourth is held back
    assert started == [10]
    release.set()
    fourth.join(5)
    assert processor.finish() == []
    assert started == [10, 20, 30, 40]
    assert (result.received, result.rows["runs"]) == (100, 100)


def test_the_pages_of_a_file_are_written_in_order_by_any_number_of_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With two processing threads, a file's second page waits for its first to be written, while a
    page of another file goes ahead."""
    first_started = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def process(task: Any, writers: Any) -> ChunkResult:
        if task.name == "a1":
            first_started.set()
            release.wait(5)
        order.append(task.name)
        return ChunkResult(rows={"runs": 1, "run_feedback_stats": 0})

    monkeypatch.setattr(runs, "process_chunk", process)
    result = runs._LaneResult()
    processor = runs._Processor(2, result, waiting=4)
    processor.submit(Task("a1", "file-a"), "a")  # type: ignore[arg-type]
    first_started.wait(5)
    processor.submit(Task("a2", "file-a"), "a")  # type: ignore[arg-type]
    processor.submit(Task("b1", "file-b"), "b")  # type: ignore[arg-type]
    deadline = time.monotonic() + 5
    while not order and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # a2 would have had its chance
    assert order == ["b1"]  # a2 waits for a1 (its file), b1 did not
    release.set()
    assert processor.finish() == []
    assert order == ["b1", "a1", "a2"]
    assert result.rows["runs"] == 3


def test_a_file_left_open_by_a_failure_is_closed_when_the_lane_finishes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed: list[str] = []

    class Writer:
        def __init__(self, path: str) -> None:
            self.path = path

        def close(self) -> None:
            closed.append(self.path)

    def process(task: Any, writers: Any) -> ChunkResult:
        writers[task.name] = Writer(task.name)  # opened, and the stream fails before its last page
        return ChunkResult(rows={"runs": 1, "run_feedback_stats": 0})

    monkeypatch.setattr(runs, "process_chunk", process)
    processor = runs._Processor(1, runs._LaneResult(), waiting=1)
    processor.submit(Task("f1", "file-f"), "a")  # type: ignore[arg-type]
    assert processor.finish() == []
    assert closed == ["f1"]


def test_a_failed_chunk_fails_the_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(task: Any, writers: Any) -> ChunkResult:
        raise OSError("disk full")

    monkeypatch.setattr(runs, "process_chunk", broken)
    processor = runs._Processor(1, runs._LaneResult(), waiting=1)
    processor.submit(Task(1, "f1"), "a")  # type: ignore[arg-type]
    deadline = time.monotonic() + 5
    with pytest.raises(OSError, match="disk full"):  # no more fetching for a lane that failed
        while time.monotonic() < deadline:
            processor.submit(Task(2, "f2"), "b")  # type: ignore[arg-type]
            time.sleep(0.01)
    errors = processor.finish()
    assert errors and all(isinstance(e, OSError) for e in errors)
