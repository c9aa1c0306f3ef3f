"""Data checks on what an export wrote, read back from the Parquet files (no Dagster here).

Each returns a ``CheckOutcome``; the asset families turn them into Dagster asset check results.
They read through the partition's own filesystem, so they check S3 exports as they check local ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipelines.sink import PartitionInfo


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def partition_files(info: PartitionInfo) -> tuple[pafs.FileSystem, list[str]]:
    fs = info.filesystem or pafs.LocalFileSystem()
    found = fs.get_file_info(pafs.FileSelector(info.path, allow_not_found=True))
    return fs, sorted(f.path for f in found if f.type == pafs.FileType.File and f.path.endswith(".parquet"))


def check_unique(infos: Sequence[PartitionInfo], keys: Sequence[str]) -> CheckOutcome:
    """No key appears twice within a written partition."""
    dupes = 0
    examples: list[str] = []
    for info in infos:
        fs, files = partition_files(info)
        if not files:
            continue
        frame = pl.from_arrow(pq.read_table(files, columns=list(keys), filesystem=fs))
        assert isinstance(frame, pl.DataFrame)
        counts = frame.group_by(list(keys)).len().filter(pl.col("len") > 1)
        dupes += counts.height
        examples.extend(str(row) for row in counts.head(3).select(keys).rows())
    return CheckOutcome(
        dupes == 0,
        f"key {tuple(keys)} unique in every partition"
        if dupes == 0
        else f"{dupes} duplicated keys {tuple(keys)}",
        {"duplicated_keys": dupes, "examples": examples[:3]},
    )


def check_schema(infos: Sequence[PartitionInfo], schema: pa.Schema) -> CheckOutcome:
    """Every file has exactly the declared schema (names, order, types, nullability)."""
    bad = []
    checked = 0
    for info in infos:
        fs, files = partition_files(info)
        for path in files:
            checked += 1
            written = pq.read_schema(path, filesystem=fs)
            same_types = written.equals(schema, check_metadata=False)
            if not same_types or [x.nullable for x in written] != [x.nullable for x in schema]:
                bad.append(path)
    return CheckOutcome(
        not bad,
        f"{checked} file(s) match the declared schema" if not bad else f"{len(bad)} file(s) differ",
        {"files_checked": checked, "mismatched": bad[:5]},
    )


def written_rows(infos: Sequence[PartitionInfo]) -> int:
    total = 0
    for info in infos:
        fs, files = partition_files(info)
        total += sum(pq.read_metadata(path, filesystem=fs).num_rows for path in files)
    return total


def check_reconciled(
    api_items: int, infos: Sequence[PartitionInfo], rejected: int, skipped: int = 0
) -> CheckOutcome:
    """Every item the API returned is either in the table, in ``_rejected``, or was skipped on purpose."""
    rows = written_rows(infos)
    accounted = rows + rejected + skipped
    return CheckOutcome(
        accounted == api_items,
        f"API items {api_items} = rows {rows} + rejected {rejected} + outside the window {skipped}"
        if accounted == api_items
        else f"API returned {api_items} items but {accounted} are accounted for",
        {"api_items": api_items, "rows_read_back": rows, "rejected": rejected, "skipped": skipped},
    )
