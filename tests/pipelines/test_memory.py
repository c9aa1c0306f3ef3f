"""The malloc arena cap applies on glibc and is harmless to call again."""

from __future__ import annotations

import platform

import pytest

from pipelines.memory import limit_malloc_arenas


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_the_cap_applies_on_glibc() -> None:
    assert limit_malloc_arenas(2) is True
    assert limit_malloc_arenas(2) is True
