"""The sessions family: a daily snapshot of every tracing project and experiment with its stats."""

import time
from datetime import UTC, datetime

from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, multi_asset

from assets.common import check_result, check_specs, fetch_metadata, table_checks, table_metadata
from pipelines.checks import check_reconciled
from pipelines.export.sessions import export_sessions_snapshot
from pipelines.flatten.sessions import SESSION_FEEDBACK_STATS, SESSIONS
from pipelines.resources import LangSmithResource, ParquetSinkResource


@multi_asset(
    specs=[
        AssetSpec(
            "sessions",
            description="Every tracer session (tracing projects and experiments) with its stats, "
            "one snapshot per UTC day (snapshot_date = the day it was taken).",
            group_name="sessions",
            kinds={"parquet", "polars"},
        ),
        AssetSpec(
            "session_feedback_stats",
            description="One row per (session, feedback key, level run/session) of the snapshot.",
            group_name="sessions",
            kinds={"parquet", "polars"},
        ),
    ],
    check_specs=[*check_specs("sessions", reconciled=True), *check_specs("session_feedback_stats")],
)
def sessions(context: AssetExecutionContext, langsmith: LangSmithResource, export_root: ParquetSinkResource):
    """Take today's snapshot: replaces the ``snapshot_date=<today UTC>`` partition of both tables."""
    snapshot_at = datetime.now(UTC)
    started = time.monotonic()
    sink = export_root.sink()
    with langsmith.client() as client:
        result = export_sessions_snapshot(langsmith.sessions(client), sink, snapshot_at.date(), snapshot_at)
        stats = client.stats
    sink.close()
    context.log.info(
        "snapshot %s: %d sessions, %d rejected", result.partition, result.sessions, result.rejected
    )
    common = fetch_metadata(
        stats,
        started,
        api_items=result.sessions + result.rejected,
        rejected_rows=result.rejected,
        rows_with_unknown_fields=result.unknown_fields,
        snapshot_date=result.partition,
    )
    infos = result.tables
    yield MaterializeResult(
        asset_key="sessions", metadata={**table_metadata(SESSIONS, [infos["sessions"]]), **common}
    )
    yield MaterializeResult(
        asset_key="session_feedback_stats",
        metadata={**table_metadata(SESSION_FEEDBACK_STATS, [infos["session_feedback_stats"]]), **common},
    )
    yield from table_checks("sessions", SESSIONS, [infos["sessions"]], ["id"])
    yield check_result(
        "sessions",
        "reconciled_with_api",
        check_reconciled(result.sessions + result.rejected, [infos["sessions"]], result.rejected),
    )
    yield from table_checks(
        "session_feedback_stats",
        SESSION_FEEDBACK_STATS,
        [infos["session_feedback_stats"]],
        ["session_id", "level", "feedback_key"],
    )
