"""Prefetching pages in the background keeps order, raises the fetcher's errors, and stops early."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from pipelines.pagination import prefetched


def test_pages_come_in_order() -> None:
    assert list(prefetched(iter(range(50)), depth=2)) == list(range(50))


def test_an_error_of_the_fetcher_is_raised_in_the_caller() -> None:
    def pages() -> Iterator[int]:
        yield 1
        raise RuntimeError("page 2 failed")

    got = []
    with pytest.raises(RuntimeError, match="page 2 failed"):
        for page in prefetched(pages()):
            got.append(page)
    assert got == [1]


def test_the_fetcher_stops_when_the_caller_stops() -> None:
    fetched = []

    def pages() -> Iterator[int]:
        for n in range(1000):
            fetched.append(n)
            yield n

    stream = prefetched(pages(), depth=1)
    assert next(stream) == 0
    stream.close()
    time.sleep(0.3)
    assert len(fetched) <= 2  # the one taken and at most one fetched ahead
    assert not any(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())


def test_no_more_than_depth_pages_are_fetched_ahead_of_the_caller() -> None:
    fetched = []

    def pages() -> Iterator[int]:
        for n in range(20):
            fetched.append(n)
            yield n

    for taken, page in enumerate(prefetched(pages(), depth=2), start=1):
        time.sleep(0.02)  # the caller is slower than the fetcher
        assert page == taken - 1
        assert len(fetched) <= taken + 2
    assert len(fetched) == 20
