"""The malloc settings apply on glibc, Arrow then allocates from that malloc, and setting them again
is harmless."""

from __future__ import annotations

import gc
import platform

import pyarrow as pa
import pytest

from pipelines.memory import GC_THRESHOLD, fewer_collections, tune_memory


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_the_settings_apply_on_glibc_and_arrow_allocates_from_malloc() -> None:
    assert tune_memory(2) is True
    assert tune_memory(2) is True
    assert pa.default_memory_pool().backend_name == "system"
    assert pa.array(["x" * 100_000]).nbytes > 100_000  # allocations still work


def test_fewer_collections_while_any_block_runs_then_the_thresholds_come_back() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] == GC_THRESHOLD
        with fewer_collections():  # an overlapping export, on another thread
            pass
        assert gc.get_threshold()[0] == GC_THRESHOLD  # the first is still running
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("an export failed")
    assert gc.get_threshold() == before
