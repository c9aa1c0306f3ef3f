"""Schedules: the nightly export of yesterday (UTC)."""

from __future__ import annotations

from dagster import build_schedule_from_partitioned_job

from pipelines.jobs import runs_job

# Runs at 00:30 UTC for the day that just ended.
daily_runs_schedule = build_schedule_from_partitioned_job(runs_job, hour_of_day=0, minute_of_hour=30)

SCHEDULES = [daily_runs_schedule]
