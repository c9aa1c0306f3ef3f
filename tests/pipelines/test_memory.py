"""The malloc settings apply on glibc, Arrow then allocates from that malloc, and setting them again
is harmless."""

from __future__ import annotations

import platform

import pyarrow as pa
import pytest

from pipelines.memory import tune_memory


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_the_settings_apply_on_glibc_and_arrow_allocates_from_malloc() -> None:
    assert tune_memory(2) is True
    assert tune_memory(2) is True
    assert pa.default_memory_pool().backend_name == "system"
    assert pa.array(["x" * 100_000]).nbytes > 100_000  # allocations still work
