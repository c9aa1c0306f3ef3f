"""The malloc settings apply on glibc and are harmless to set again."""

from __future__ import annotations

import platform

import pytest

from pipelines.memory import tune_malloc


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_the_cap_applies_on_glibc() -> None:
    assert tune_malloc(2) is True
    assert tune_malloc(2) is True
