"""The experiments family: examples, experiment runs, typed feedback and grouped comparisons,
partitioned by the UTC start date of the experiment."""

import time
from datetime import UTC, date, datetime

from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, MetadataValue, multi_asset

from assets.common import check_result, check_specs, fetch_metadata, table_checks, table_metadata
from pipelines.checks import check_reconciled
from pipelines.export.experiments import export_experiments_partition
from pipelines.flatten.experiments import (
    DATASET_EXAMPLES,
    EXPERIMENT_FEEDBACK,
    EXPERIMENT_GROUPS,
    EXPERIMENT_RUNS,
)
from pipelines.partitions import BACKFILL, DAILY
from pipelines.resources import LangSmithResource, ParquetSinkResource

# table: (declared schema, description, key columns)
TABLES = {
    "dataset_examples": (
        DATASET_EXAMPLES,
        "One row per (dataset, example) of the day's experiments.",
        ["dataset_id", "example_id"],
    ),
    "experiment_runs": (EXPERIMENT_RUNS, "One row per run of an experiment on an example.", ["id"]),
    "experiment_feedback": (
        EXPERIMENT_FEEDBACK,
        "One row per feedback on an experiment run, typed by value.",
        ["id"],
    ),
    "experiment_groups": (
        EXPERIMENT_GROUPS,
        "One row per (dataset, metadata key, group key, experiment) with the group's stats.",
        ["dataset_id", "group_by", "metadata_key", "group_key", "session_id"],
    ),
}


@multi_asset(
    specs=[
        AssetSpec(
            name, description=doc, group_name="experiments", kinds={"parquet", "polars"}, partitions_def=DAILY
        )
        for name, (_, doc, _) in TABLES.items()
    ],
    check_specs=[spec for name in TABLES for spec in check_specs(name, reconciled=name == "experiment_runs")],
    partitions_def=DAILY,
    backfill_policy=BACKFILL,
)
def experiments(
    context: AssetExecutionContext, langsmith: LangSmithResource, export_root: ParquetSinkResource
):
    """Export the experiments that started on each UTC day of the partition range."""
    exported_at = datetime.now(UTC)
    started = time.monotonic()
    sink = export_root.sink()
    results = []
    with langsmith.client() as client:
        sessions = langsmith.sessions(client).items
        for key in context.partition_keys:
            result = export_experiments_partition(
                client,
                sink,
                date.fromisoformat(key),
                sessions,
                exported_at=exported_at,
                options=langsmith.experiments_options(),
            )
            context.log.info(
                "%s: %d experiment(s) on %d dataset(s): %s",
                key,
                result.experiments,
                result.datasets,
                ", ".join(f"{name} {info.rows}" for name, info in result.tables.items()),
            )
            results.append(result)
        stats = client.stats
    sink.close()
    common = fetch_metadata(
        stats,
        started,
        experiments=sum(r.experiments for r in results),
        rejected_rows=sum(r.rejected for r in results),
        rows_with_unknown_fields=sum(r.unknown_fields for r in results),
        runs_per_experiment=MetadataValue.json(
            {sid: n for r in results for sid, n in sorted(r.per_experiment_runs.items())}
        ),
    )
    for name, (schema, _, _) in TABLES.items():
        yield MaterializeResult(
            asset_key=name,
            metadata={**table_metadata(schema, [r.tables[name] for r in results]), **common},
        )
    for name, (schema, _, keys) in TABLES.items():
        yield from table_checks(name, schema, [r.tables[name] for r in results], keys)
    yield check_result(
        "experiment_runs",
        "reconciled_with_api",
        check_reconciled(
            sum(r.api_runs for r in results),
            [r.tables["experiment_runs"] for r in results],
            sum(r.rejected_runs for r in results),
        ),
    )
