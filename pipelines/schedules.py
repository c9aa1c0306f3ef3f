"""Schedules: every night, yesterday (UTC) plus a lookback window of the days before it.

Runs finish, get their costs and collect feedback after their start day, so the nightly run
re-exports the last few days too; partitions are replaced exactly, so re-exporting is safe.
"""

from __future__ import annotations

import os
from datetime import UTC, date, timedelta

from dagster import RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from pipelines.jobs import daily_export_job
from pipelines.partitions import DAILY

DEFAULT_LOOKBACK_DAYS = 3
LOOKBACK_ENV = "LANGSMITH_EXPORT_LOOKBACK_DAYS"


def lookback_days() -> int:
    """Days before yesterday that are exported again (read when the schedule is evaluated)."""
    value = os.environ.get(LOOKBACK_ENV, "")
    days = int(value) if value.strip() else DEFAULT_LOOKBACK_DAYS
    if days < 0:
        raise ValueError(f"{LOOKBACK_ENV} must be 0 or more, not {value!r}")
    return days


def nightly_range(today: date, lookback: int, first_partition: date) -> tuple[date, date] | None:
    """The partitions the night of ``today`` exports: [yesterday - lookback, yesterday]."""
    last = today - timedelta(days=1)
    first = max(last - timedelta(days=lookback), first_partition)
    return None if last < first else (first, last)


@schedule(
    name="export_daily_schedule",
    job=daily_export_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    description="00:30 UTC: the sessions snapshot, and runs and experiments of yesterday plus the "
    f"lookback window ({LOOKBACK_ENV}, default {DEFAULT_LOOKBACK_DAYS} days), in one run.",
)
def daily_export_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    today = context.scheduled_execution_time.astimezone(UTC).date()
    first_partition = DAILY.start.date()
    window = nightly_range(today, lookback_days(), first_partition)
    if window is None:
        return SkipReason(f"no complete day since the first partition {first_partition}")
    first, last = window
    return RunRequest(
        run_key=f"nightly-{today.isoformat()}",
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
    )


SCHEDULES = [daily_export_schedule]
