"""Schedules: the nightly export of yesterday (UTC)."""

from __future__ import annotations

from dagster import ScheduleDefinition, build_schedule_from_partitioned_job

from pipelines.jobs import daily_export_job, sessions_job

# 00:30 UTC, for the day that just ended.
daily_export_schedule = build_schedule_from_partitioned_job(
    daily_export_job, hour_of_day=0, minute_of_hour=30
)

# 00:20 UTC: the snapshot of sessions and their stats.
sessions_schedule = ScheduleDefinition(
    name="snapshot_sessions_daily", job=sessions_job, cron_schedule="20 0 * * *", execution_timezone="UTC"
)

SCHEDULES = [daily_export_schedule, sessions_schedule]
