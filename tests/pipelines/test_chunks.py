"""A chunk of raw pages becomes one file per table, windowed, with the row-group cap honoured."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from pipelines.export.chunks import ChunkTask, process_chunk
from pipelines.sink import ParquetOptions


def page(ids: range, day: int) -> bytes:
    items = b",".join(b'{"id": "r%d", "start_time": "2024-01-%02dT12:00:00Z"}' % (i, day) for i in ids)
    return b'{"items": [' + items + b"]}"


def test_a_chunk_is_windowed_and_written_in_capped_row_groups(tmp_path: Path) -> None:
    window = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 23, 59, 59, 999999, tzinfo=UTC))
    task = ChunkTask(
        pages=[page(range(0, 6), 1), page(range(6, 10), 1), page(range(10, 12), 2)],
        window=window,
        root=str(tmp_path),
        files={"runs": str(tmp_path / "runs.parquet"), "run_feedback_stats": str(tmp_path / "stats.parquet")},
        exported_at=datetime(2024, 2, 1, tzinfo=UTC),
        options=ParquetOptions(row_group_rows=4),
    )
    result = process_chunk(task)
    assert (result.received, result.out_of_window, result.rows["runs"]) == (12, 2, 10)
    written = pq.ParquetFile(tmp_path / "runs.parquet")
    assert written.num_row_groups == 3
    assert sorted(written.read(columns=["id"]).column("id").to_pylist()) == sorted(f"r{i}" for i in range(10))
    assert not (tmp_path / "stats.parquet").exists()  # no feedback stats, no empty file
