"""Data checks on what an export wrote, read back from the Parquet files (no Dagster here).

Each returns a ``CheckOutcome``; the asset families turn them into Dagster asset check results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def partition_files(paths: Sequence[str]) -> list[Path]:
    return sorted(f for p in paths for f in Path(p).glob("*.parquet"))


def check_unique(paths: Sequence[str], keys: Sequence[str]) -> CheckOutcome:
    """No key appears twice within a written partition."""
    dupes = 0
    examples: list[str] = []
    for path in paths:
        files = partition_files([path])
        if not files:
            continue
        counts = pl.scan_parquet(files).group_by(list(keys)).len().filter(pl.col("len") > 1).collect()
        dupes += counts.height
        examples.extend(str(row) for row in counts.head(3).select(keys).rows())
    return CheckOutcome(
        dupes == 0,
        f"{len(keys)}-column key {tuple(keys)} unique in every partition"
        if dupes == 0
        else f"{dupes} duplicated keys {tuple(keys)}",
        {"duplicated_keys": dupes, "examples": examples[:3]},
    )


def check_schema(paths: Sequence[str], schema: pa.Schema) -> CheckOutcome:
    """Every file has exactly the declared schema (names, order, types, nullability)."""
    bad = []
    files = partition_files(paths)
    for f in files:
        written = pq.read_schema(f)
        if not written.equals(schema, check_metadata=False) or [x.nullable for x in written] != [
            x.nullable for x in schema
        ]:
            bad.append(str(f))
    return CheckOutcome(
        not bad,
        f"{len(files)} file(s) match the declared schema" if not bad else f"{len(bad)} file(s) differ",
        {"files_checked": len(files), "mismatched": bad[:5]},
    )


def written_rows(paths: Sequence[str]) -> int:
    return sum(pq.read_metadata(f).num_rows for f in partition_files(paths))


def check_reconciled(api_items: int, paths: Sequence[str], rejected: int, skipped: int = 0) -> CheckOutcome:
    """Every item the API returned is either in the table, in ``_rejected``, or was skipped on purpose."""
    rows = written_rows(paths)
    accounted = rows + rejected + skipped
    return CheckOutcome(
        accounted == api_items,
        f"API items {api_items} = rows {rows} + rejected {rejected} + outside the window {skipped}"
        if accounted == api_items
        else f"API returned {api_items} items but {accounted} are accounted for",
        {"api_items": api_items, "rows_read_back": rows, "rejected": rejected, "skipped": skipped},
    )
