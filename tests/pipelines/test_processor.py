"""A lane's processing thread: chunks are handed over without waiting, at most one more waits per
slot (memory stays bounded), and a failed chunk fails the lane."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import pipelines.export.runs as runs
from pipelines.export.chunks import ChunkResult


def test_a_handed_over_chunk_does_not_wait_but_a_third_does(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    started: list[Any] = []

    def slow(task: Any) -> ChunkResult:
        started.append(task)
        release.wait(5)
        return ChunkResult(received=task, rows={"runs": task, "run_feedback_stats": 0})

    monkeypatch.setattr(runs, "process_chunk", slow)
    result = runs._LaneResult()
    processor = runs._Processor(1, result)
    processor.submit(10, "a")  # type: ignore[arg-type]
    while not started:  # taken up by the processing thread
        time.sleep(0.01)
    processor.submit(20, "b")  # type: ignore[arg-type]  # waits its turn; the caller goes on
    third = threading.Thread(target=processor.submit, args=(30, "c"))
    third.start()
    third.join(0.3)
    assert third.is_alive()  # one chunk already waits: the third is held back
    release.set()
    third.join(5)
    assert processor.finish() == []
    assert (result.received, result.rows["runs"]) == (60, 60)


def test_a_failed_chunk_fails_the_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(task: Any) -> ChunkResult:
        raise OSError("disk full")

    monkeypatch.setattr(runs, "process_chunk", broken)
    processor = runs._Processor(1, runs._LaneResult())
    processor.submit(1, "a")  # type: ignore[arg-type]
    deadline = time.monotonic() + 5
    with pytest.raises(OSError, match="disk full"):  # no more fetching for a lane that failed
        while time.monotonic() < deadline:
            processor.submit(2, "b")  # type: ignore[arg-type]
            time.sleep(0.01)
    errors = processor.finish()
    assert errors and all(isinstance(e, OSError) for e in errors)
