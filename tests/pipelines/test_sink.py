"""The Parquet sink: exact replacement, aborted writes, interrupted swaps."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.sink import STAGING, ParquetSink

SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("n", pa.int64())])


def table(ids: list[str]) -> pa.Table:
    return pa.table({"id": ids, "n": list(range(len(ids)))}, schema=SCHEMA)


def read_ids(root: Path) -> list[str]:
    files = sorted((root / "t" / "d=2024-01-01").glob("*.parquet"))
    return sorted(i for f in files for i in pq.read_table(f).column("id").to_pylist())


def test_rewrite_replaces_the_partition_exactly(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path)
    first = sink.begin("t", SCHEMA, "d", "2024-01-01")
    first.write("part-a.parquet", table(["a", "b"]))
    first.write("part-b.parquet", table(["c"]))
    first.commit()
    second = sink.begin("t", SCHEMA, "d", "2024-01-01")
    second.write("part-z.parquet", table(["x"]))
    info = second.commit()
    assert read_ids(tmp_path) == ["x"]
    assert (info.rows, info.files) == (1, 1)
    assert [p.name for p in (tmp_path / "t" / "d=2024-01-01").iterdir()] == ["part-z.parquet"]


def test_an_aborted_write_leaves_the_old_partition(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path)
    good = sink.begin("t", SCHEMA, "d", "2024-01-01")
    good.write("p.parquet", table(["a"]))
    good.commit()
    bad = sink.begin("t", SCHEMA, "d", "2024-01-01")
    bad.write("p.parquet", table(["b", "c"]))
    bad.abort()
    assert read_ids(tmp_path) == ["a"]
    sink.close()
    assert not (tmp_path / STAGING).exists()


def test_a_table_of_another_schema_is_refused(tmp_path: Path) -> None:
    part = ParquetSink(tmp_path).begin("t", SCHEMA, "d", "2024-01-01")
    with pytest.raises(TypeError, match="declared schema"):
        part.write("p.parquet", pa.table({"id": ["a"], "n": [1.5]}))


def test_recover_restores_a_partition_caught_between_the_two_renames(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path)
    part = sink.begin("t", SCHEMA, "d", "2024-01-01")
    part.write("p.parquet", table(["a"]))
    part.commit()
    # A writer that died right after moving the old version into its trash:
    dead_trash = tmp_path / STAGING / "dead-writer" / "trash"
    dead_trash.mkdir(parents=True)
    (dead_trash / "1.target").write_text("t/d=2024-01-01", encoding="utf-8")
    os.rename(tmp_path / "t" / "d=2024-01-01", dead_trash / "1")
    old = time.time() - 120
    os.utime(dead_trash, (old, old))
    ParquetSink(tmp_path).recover()
    assert read_ids(tmp_path) == ["a"]


def test_an_empty_new_version_removes_the_partition(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path)
    part = sink.begin("t", SCHEMA, "d", "2024-01-01")
    part.write("p.parquet", table(["a"]))
    part.commit()
    empty = sink.begin("t", SCHEMA, "d", "2024-01-01")
    info = empty.commit()
    assert (info.rows, info.files) == (0, 0)
    assert not (tmp_path / "t" / "d=2024-01-01").exists()
