"""Exports: API pages → flattened tables → Parquet partitions, one module per table family."""

from pipelines.export.common import (
    REJECTED,
    SESSIONS_PATH,
    day_bounds,
    fetch_sessions,
    rejected_table,
    rfc3339_us,
    time_slices,
)
from pipelines.export.runs import RUNS_QUERY_PATH, RunsExportOptions, RunsExportResult, export_runs_partition

__all__ = [
    "REJECTED",
    "RUNS_QUERY_PATH",
    "SESSIONS_PATH",
    "RunsExportOptions",
    "RunsExportResult",
    "day_bounds",
    "export_runs_partition",
    "fetch_sessions",
    "rejected_table",
    "rfc3339_us",
    "time_slices",
]
