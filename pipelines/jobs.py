"""Jobs: asset selections that schedules and the CLI launch."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from pipelines.partitions import DAILY

runs_job = define_asset_job(
    "export_runs",
    selection=AssetSelection.assets("runs", "run_feedback_stats"),
    partitions_def=DAILY,
    description="Export runs and run feedback stats for a range of UTC days.",
)

JOBS = [runs_job]
