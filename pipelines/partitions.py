"""Daily UTC partitions shared by every date-partitioned asset.

The start date is read from ``LANGSMITH_EXPORT_START_DATE`` at import time: Dagster needs the
partition set when definitions load, so this is the one documented exception to "config through
resources". Changing it only changes which partitions exist, never what a partition holds.
"""

from __future__ import annotations

import os

from dagster import BackfillPolicy, DailyPartitionsDefinition

DEFAULT_START_DATE = "2024-01-01"

DAILY = DailyPartitionsDefinition(
    start_date=os.environ.get("LANGSMITH_EXPORT_START_DATE") or DEFAULT_START_DATE,
    timezone="UTC",
    fmt="%Y-%m-%d",
)

# A backfill of any range is one run that exports and commits day by day: what
# `dagster asset materialize --partition-range` requires, and a 90-day backfill is one process
# launch, not 90. A failure keeps the days already committed; rerunning the range converges.
BACKFILL = BackfillPolicy.single_run()
