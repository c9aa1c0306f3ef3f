"""A lane's processing threads: a page takes a place among ``waiting`` before its body is read and
gives it back when processed (memory stays bounded whatever the fetching threads), a file's pages
are written in order, a failed page fails the lane and a file it left open is closed; a stream that
fails gives its place back, and a retried body keeps the one it had."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime
from typing import Any

import pytest

import pipelines.export.runs as runs
from pipelines.client import ClientStats
from pipelines.errors import LangSmithResponseError
from pipelines.export.chunks import ChunkResult
from pipelines.records import Decoded
from pipelines.sink import ParquetOptions


class Task:
    """What the processor needs of a task: its files (a task's file is its identity here)."""

    def __init__(self, name: Any, file: str) -> None:
        self.name = name
        self.files = {"runs": file}


def hand(processor: runs._Processor, task: Task, label: str) -> None:
    """As a fetching thread does: a place (before the body), then the page."""
    processor.reserve()
    processor.submit(task, label)  # type: ignore[arg-type]


def test_pages_are_handed_over_without_waiting_until_their_places_are_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    started: list[Any] = []

    def slow(task: Any, writers: Any) -> ChunkResult:
        started.append(task.name)
        release.wait(5)
        return ChunkResult(received=task.name, rows={"runs": task.name, "run_feedback_stats": 0})

    monkeypatch.setattr(runs, "process_chunk", slow)
    result = runs._LaneResult()
    processor = runs._Processor(1, result, waiting=2)
    hand(processor, Task(10, "f10"), "a")
    while not started:  # taken up by the processing thread: its place is given back
        time.sleep(0.01)
    hand(processor, Task(20, "f20"), "b")  # wait their turn; the caller goes on
    hand(processor, Task(30, "f30"), "c")
    fourth = threading.Thread(target=hand, args=(processor, Task(40, "f40"), "d"))
    fourth.start()
    fourth.join(0.3)
    assert fourth.is_alive()  # two pages already wait: the fourth gets no place (its body is not read)
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
    hand(processor, Task("a1", "file-a"), "a")
    first_started.wait(5)
    hand(processor, Task("a2", "file-a"), "a")
    hand(processor, Task("b1", "file-b"), "b")
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
    hand(processor, Task("f1", "file-f"), "a")
    assert processor.finish() == []
    assert closed == ["f1"]


def test_a_failed_chunk_fails_the_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(task: Any, writers: Any) -> ChunkResult:
        raise OSError("disk full")

    monkeypatch.setattr(runs, "process_chunk", broken)
    processor = runs._Processor(1, runs._LaneResult(), waiting=1)
    hand(processor, Task(1, "f1"), "a")
    deadline = time.monotonic() + 5
    with pytest.raises(OSError, match="disk full"):  # no more fetching for a lane that failed
        while time.monotonic() < deadline:
            hand(processor, Task(2, "f2"), "b")
            time.sleep(0.01)
    errors = processor.finish()
    assert errors and all(isinstance(e, OSError) for e in errors)


class FakeClient:
    """Answers each runs query with ``pages`` in turn, calling ``before_body`` as the client does
    (``bodies`` times: more than once is a retried body); an exception in ``pages`` is raised
    after the body was read."""

    def __init__(self, pages: list[Any], bodies: int = 1) -> None:
        self.stats = ClientStats()
        self._pages = iter(pages)
        self._bodies = bodies

    def request(self, method: str, path: str, *, before_body: Any = None, **_: Any) -> Any:
        for _ in range(self._bodies):
            before_body()
        page = next(self._pages)
        if isinstance(page, BaseException):
            raise page
        return page


def lane() -> runs._Lane:
    return runs._Lane(
        date(2024, 1, 1), "token", [], 1, 1, 1000, 10_000, "/nowhere", {t: "/nowhere" for t in runs._TABLES},
        ParquetOptions(), datetime(2024, 1, 2, tzinfo=UTC), None,
    )  # fmt: skip


STREAM = runs._Stream(0, 0, (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)), ["p"])


def test_a_stream_that_fails_after_reading_a_body_gives_its_place_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed: list[Any] = []
    monkeypatch.setattr(runs, "process_chunk", lambda task, writers: handed.append(task) or ChunkResult())
    processor = runs._Processor(1, runs._LaneResult(), waiting=1)
    client = FakeClient([Decoded([], next_cursor="c2"), LangSmithResponseError("truncated")])
    raised: list[BaseException] = []

    def export() -> None:
        try:
            runs._export_stream(client, lane(), STREAM, processor)  # type: ignore[arg-type]
        except LangSmithResponseError as exc:
            raised.append(exc)

    stream = threading.Thread(target=export, daemon=True)
    stream.start()
    stream.join(5)
    assert not stream.is_alive() and len(raised) == 1
    assert len(handed) == 1 and handed[0].close is False  # the first page; the second failed
    taken = threading.Thread(target=processor.reserve, daemon=True)
    taken.start()
    taken.join(5)
    assert not taken.is_alive()  # the only place is free again: it was not kept by the failed body
    processor.unreserve()
    assert processor.finish() == []


def test_a_retried_body_keeps_the_place_it_had(monkeypatch: pytest.MonkeyPatch) -> None:
    """With one place, a body read twice (a retry) would otherwise wait forever for a second."""
    handed: list[Any] = []
    monkeypatch.setattr(runs, "process_chunk", lambda task, writers: handed.append(task) or ChunkResult())
    processor = runs._Processor(1, runs._LaneResult(), waiting=1)
    client = FakeClient([Decoded([], next_cursor="c2"), Decoded([], next_cursor=None)], bodies=2)
    args = (client, lane(), STREAM, processor)
    stream = threading.Thread(target=runs._export_stream, args=args, daemon=True)
    stream.start()
    stream.join(5)
    assert not stream.is_alive()
    assert processor.finish() == []
    assert [task.close for task in handed] == [False, True]  # both pages, one file
