"""The runs family: ``runs`` and ``run_feedback_stats``, one multi-asset per daily partition range."""

import time
from datetime import UTC, date, datetime

from dagster import AssetExecutionContext, AssetSpec, BackfillPolicy, MaterializeResult, multi_asset

from assets.common import table_metadata
from pipelines.export import export_runs_partition
from pipelines.flatten.runs import RUN_FEEDBACK_STATS, RUNS
from pipelines.partitions import DAILY
from pipelines.resources import LangSmithResource, ParquetSinkResource

# A 90-day backfill runs as 3 runs of 30 days, not 90 process launches.
RUNS_BACKFILL = BackfillPolicy.multi_run(max_partitions_per_run=30)


@multi_asset(
    specs=[
        AssetSpec(
            "runs",
            description="Every run (span) of every tracing project and experiment, by UTC start date.",
            group_name="runs",
            kinds={"parquet", "polars"},
            partitions_def=DAILY,
        ),
        AssetSpec(
            "run_feedback_stats",
            description="One row per (run, feedback key) of the runs' feedback_stats.",
            group_name="runs",
            kinds={"parquet", "polars"},
            partitions_def=DAILY,
        ),
    ],
    partitions_def=DAILY,
    backfill_policy=RUNS_BACKFILL,
)
def runs(context: AssetExecutionContext, langsmith: LangSmithResource, export_root: ParquetSinkResource):
    """Export the runs of each UTC day in the partition range to ``runs`` and ``run_feedback_stats``."""
    exported_at = datetime.now(UTC)
    started = time.monotonic()
    sink = export_root.sink()
    results = []
    with langsmith.client() as client:
        sessions = langsmith.sessions(client).items
        context.log.info(
            "exporting runs of %d sessions for %d day(s)", len(sessions), len(context.partition_keys)
        )
        for key in context.partition_keys:
            result = export_runs_partition(
                client,
                sink,
                date.fromisoformat(key),
                [s.id for s in sessions],
                exported_at=exported_at,
                options=langsmith.runs_options(),
            )
            context.log.info(
                "%s: %d runs, %d feedback-stat rows, %d pages, %d rejected",
                key,
                result.tables["runs"].rows,
                result.tables["run_feedback_stats"].rows,
                result.pages,
                result.rejected,
            )
            results.append(result)
        stats = client.stats
    sink.close()
    common = {
        "pages": stats.pages,
        "requests": stats.requests,
        "retries": stats.retries,
        "api_items": sum(r.received for r in results),
        "rejected_rows": sum(r.rejected for r in results),
        "sessions": len(sessions),
        "duration_seconds": round(time.monotonic() - started, 3),
    }
    yield MaterializeResult(
        asset_key="runs",
        metadata={**table_metadata(RUNS, [r.tables["runs"] for r in results]), **common},
    )
    yield MaterializeResult(
        asset_key="run_feedback_stats",
        metadata={
            **table_metadata(RUN_FEEDBACK_STATS, [r.tables["run_feedback_stats"] for r in results]),
            **common,
        },
    )
