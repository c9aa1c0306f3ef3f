"""Jobs: asset selections that schedules and the CLI launch."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job, in_process_executor

from pipelines.partitions import DAILY

# In-process: the sessions, runs and experiments steps share one LangSmith resource, so the sessions
# list is fetched once per run and shared; each step fetches concurrently inside itself.
daily_export_job = define_asset_job(
    "export_daily",
    selection=AssetSelection.groups("sessions", "runs", "experiments"),
    partitions_def=DAILY,
    executor_def=in_process_executor,
    description="Today's sessions snapshot, and runs and experiments for a range of UTC days.",
)

runs_job = define_asset_job(
    "export_runs",
    selection=AssetSelection.groups("runs"),
    partitions_def=DAILY,
    description="Export runs and run feedback stats for a range of UTC days.",
)

sessions_job = define_asset_job(
    "snapshot_sessions",
    selection=AssetSelection.groups("sessions"),
    description="Take today's snapshot of every session with its stats.",
)

JOBS = [daily_export_job, runs_job, sessions_job]
