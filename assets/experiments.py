"""The experiments family: examples, experiment runs, typed feedback and grouped comparisons,
partitioned by the UTC start date of the experiment."""

import time
from datetime import UTC, date, datetime

from dagster import AssetExecutionContext, AssetSpec, BackfillPolicy, MaterializeResult, multi_asset

from assets.common import table_metadata
from pipelines.export.experiments import export_experiments_partition
from pipelines.flatten.experiments import (
    DATASET_EXAMPLES,
    EXPERIMENT_FEEDBACK,
    EXPERIMENT_GROUPS,
    EXPERIMENT_RUNS,
)
from pipelines.partitions import DAILY
from pipelines.resources import LangSmithResource, ParquetSinkResource

TABLES = {
    "dataset_examples": (DATASET_EXAMPLES, "One row per (dataset, example) of the day's experiments."),
    "experiment_runs": (EXPERIMENT_RUNS, "One row per run of an experiment on an example."),
    "experiment_feedback": (
        EXPERIMENT_FEEDBACK,
        "One row per feedback on an experiment run, typed by value.",
    ),
    "experiment_groups": (
        EXPERIMENT_GROUPS,
        "One row per (dataset, metadata key, group key, experiment) with the group's stats.",
    ),
}


@multi_asset(
    specs=[
        AssetSpec(
            name, description=doc, group_name="experiments", kinds={"parquet", "polars"}, partitions_def=DAILY
        )
        for name, (_, doc) in TABLES.items()
    ],
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=30),
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
    common = {
        "pages": stats.pages,
        "requests": stats.requests,
        "retries": stats.retries,
        "experiments": sum(r.experiments for r in results),
        "rejected_rows": sum(r.rejected for r in results),
        "duration_seconds": round(time.monotonic() - started, 3),
    }
    for name, (schema, _) in TABLES.items():
        yield MaterializeResult(
            asset_key=name,
            metadata={**table_metadata(schema, [r.tables[name] for r in results]), **common},
        )
