"""The runs family: ``runs`` and ``run_feedback_stats``, one multi-asset per daily partition range."""

import time
from contextlib import ExitStack
from datetime import UTC, date, datetime

from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, multi_asset

from assets.common import check_result, check_specs, fetch_metadata, table_checks, table_metadata
from pipelines.checks import check_reconciled
from pipelines.export.chunks import process_pool
from pipelines.export.runs import export_runs_partition
from pipelines.flatten.runs import RUN_FEEDBACK_STATS, RUNS
from pipelines.partitions import BACKFILL, DAILY
from pipelines.resources import LangSmithResource, ParquetSinkResource


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
    check_specs=[*check_specs("runs", reconciled=True), *check_specs("run_feedback_stats")],
    partitions_def=DAILY,
    backfill_policy=BACKFILL,
)
def runs(context: AssetExecutionContext, langsmith: LangSmithResource, export_root: ParquetSinkResource):
    """Export the runs of each UTC day in the partition range to ``runs`` and ``run_feedback_stats``."""
    exported_at = datetime.now(UTC)
    started = time.monotonic()
    sink = export_root.sink()
    results = []
    options = langsmith.runs_options()
    with langsmith.client() as client, ExitStack() as stack:
        # One pool of worker processes for the whole partition range, not one per day.
        pool = stack.enter_context(process_pool(options.workers)) if options.workers else None
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
                options=options,
                pool=pool,
            )
            context.log.info(
                "%s: %d runs, %d feedback-stat rows, %d pages, %d rejected, %d with unknown fields",
                key,
                result.tables["runs"].rows,
                result.tables["run_feedback_stats"].rows,
                result.pages,
                result.rejected,
                result.unknown_fields,
            )
            results.append(result)
        stats = client.stats
    sink.close()
    common = fetch_metadata(
        stats,
        started,
        api_items=sum(r.received for r in results),
        rejected_rows=sum(r.rejected for r in results),
        rows_with_unknown_fields=sum(r.unknown_fields for r in results),
        sessions=len(sessions),
    )
    runs_infos = [r.tables["runs"] for r in results]
    stats_infos = [r.tables["run_feedback_stats"] for r in results]
    yield MaterializeResult(asset_key="runs", metadata={**table_metadata(RUNS, runs_infos), **common})
    yield MaterializeResult(
        asset_key="run_feedback_stats",
        metadata={**table_metadata(RUN_FEEDBACK_STATS, stats_infos), **common},
    )
    yield from table_checks("runs", RUNS, runs_infos, ["id"])
    yield check_result(
        "runs",
        "reconciled_with_api",
        check_reconciled(
            sum(r.received for r in results),
            runs_infos,
            sum(r.rejected for r in results),
            sum(r.out_of_window for r in results),
        ),
    )
    yield from table_checks("run_feedback_stats", RUN_FEEDBACK_STATS, stats_infos, ["run_id", "feedback_key"])
