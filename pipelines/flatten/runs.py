"""Runs: v2 run records → the ``runs`` and ``run_feedback_stats`` tables.

Records are staged column by column into Arrow, then one Polars expression chain derives the typed
columns (lowercased enums, exact money, promoted details, metadata keys, parent run id).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import polars as pl
import pyarrow as pa

from pipelines.flatten.common import (
    COMPLETION_TOKEN_CATEGORIES,
    MONEY,
    PROMPT_TOKEN_CATEGORIES,
    TIMESTAMP,
    column,
    conform,
    detail_category,
    exported_at_column,
    exported_at_value,
    feedback_stats_columns,
    feedback_stats_long,
    from_columns,
    json_objects,
    money,
    raw_json,
    strings,
    timestamps,
    unknown_fields_column,
    unknown_json,
)
from pipelines.records import RunV2


def _detail_columns(side: str, kind: str, categories: Sequence[str]) -> list[pa.Field]:
    type_ = pa.int64() if kind == "tokens" else MONEY
    unit = "tokens" if kind == "tokens" else "USD"
    source = f"{side}_{'token' if kind == 'tokens' else 'cost'}_details.raw"
    return [
        column(f"{side}_{cat}_{kind}", type_, f"{side.capitalize()} {unit}: {cat}", f"{source}.{cat}")
        for cat in categories
    ]


RUNS = pa.schema(
    [
        column("id", pa.string(), "Run id (span)", "id", nullable=False),
        column("trace_id", pa.string(), "Id of the root run of the trace", "trace_id"),
        column("session_id", pa.string(), "Tracing project / experiment id", "project_id"),
        column(
            "parent_run_id",
            pa.string(),
            "Direct parent run id (null for a root run)",
            "last of parent_run_ids",
        ),
        column("parent_run_ids", pa.list_(pa.string()), "Ancestor run ids, root first", "parent_run_ids"),
        column("dotted_order", pa.string(), "Position in the trace tree, sortable", "dotted_order"),
        column("is_root", pa.bool_(), "Whether the run is the root of its trace", "is_root"),
        column("name", pa.string(), "Run name", "name"),
        column(
            "run_type",
            pa.string(),
            "llm, chain, tool, retriever, embedding, prompt or parser (lowercase)",
            "run_type",
        ),
        column("status", pa.string(), "success, error or pending (lowercase)", "status"),
        column("start_time", TIMESTAMP, "Start time, UTC", "start_time"),
        column("end_time", TIMESTAMP, "End time, UTC (null while pending)", "end_time"),
        column("first_token_time", TIMESTAMP, "Time of the first streamed token, UTC", "first_token_time"),
        column(
            "latency_seconds", pa.float64(), "Latency in seconds as LangSmith reports it", "latency_seconds"
        ),
        column("error", pa.string(), "Error text of an errored run", "error"),
        column("thread_id", pa.string(), "Conversation thread id", "thread_id"),
        column(
            "reference_example_id",
            pa.string(),
            "Dataset example the run was evaluated on",
            "reference_example_id",
        ),
        column("reference_dataset_id", pa.string(), "Dataset of that example", "reference_dataset_id"),
        column("is_in_dataset", pa.bool_(), "Whether the run was added to a dataset", "is_in_dataset"),
        column("price_model_id", pa.string(), "Price model used for the costs", "price_model_id"),
        column("tags", pa.list_(pa.string()), "Tags", "tags"),
        column("app_path", pa.string(), "Path of the run in the LangSmith app", "app_path"),
        column("ls_model_name", pa.string(), "Model name from run metadata", "metadata.ls_model_name"),
        column("ls_provider", pa.string(), "Model provider from run metadata", "metadata.ls_provider"),
        column("total_tokens", pa.int64(), "Total tokens", "total_tokens"),
        column("prompt_tokens", pa.int64(), "Prompt (input) tokens", "prompt_tokens"),
        column("completion_tokens", pa.int64(), "Completion (output) tokens", "completion_tokens"),
        column("total_cost", MONEY, "Total cost, USD, exact", "total_cost"),
        column("prompt_cost", MONEY, "Prompt cost, USD, exact", "prompt_cost"),
        column("completion_cost", MONEY, "Completion cost, USD, exact", "completion_cost"),
        *_detail_columns("prompt", "tokens", PROMPT_TOKEN_CATEGORIES),
        *_detail_columns("completion", "tokens", COMPLETION_TOKEN_CATEGORIES),
        *_detail_columns("prompt", "cost", PROMPT_TOKEN_CATEGORIES),
        *_detail_columns("completion", "cost", COMPLETION_TOKEN_CATEGORIES),
        column(
            "prompt_token_details", pa.string(), "JSON: every prompt token category", "prompt_token_details"
        ),
        column(
            "completion_token_details",
            pa.string(),
            "JSON: every completion token category",
            "completion_token_details",
        ),
        column("prompt_cost_details", pa.string(), "JSON: every prompt cost category", "prompt_cost_details"),
        column(
            "completion_cost_details",
            pa.string(),
            "JSON: every completion cost category",
            "completion_cost_details",
        ),
        column("inputs", pa.string(), "JSON text of the inputs, byte-exact", "inputs"),
        column("outputs", pa.string(), "JSON text of the outputs, byte-exact", "outputs"),
        column("metadata", pa.string(), "JSON text of the run metadata", "metadata"),
        column("extra", pa.string(), "JSON text of extra", "extra"),
        column("events", pa.string(), "JSON array of events ({name, time, kwargs})", "events"),
        column(
            "feedback_stats",
            pa.string(),
            "JSON object of feedback stats (see run_feedback_stats)",
            "feedback_stats",
        ),
        unknown_fields_column(),
        exported_at_column(),
    ]
)

RUN_FEEDBACK_STATS = pa.schema(
    [
        column("run_id", pa.string(), "Run id", "id", nullable=False),
        column("session_id", pa.string(), "Tracing project / experiment id", "project_id"),
        column("start_time", TIMESTAMP, "Start time of the run, UTC", "start_time"),
        *feedback_stats_columns("run_id", level_source="feedback_stats"),
        exported_at_column(),
    ]
)

_DETAIL_FIELDS = (
    ("prompt", "token", PROMPT_TOKEN_CATEGORIES),
    ("completion", "token", COMPLETION_TOKEN_CATEGORIES),
    ("prompt", "cost", PROMPT_TOKEN_CATEGORIES),
    ("completion", "cost", COMPLETION_TOKEN_CATEGORIES),
)


def _stage(items: Sequence[RunV2], unknown: Sequence[bytes | None] | None) -> pl.DataFrame:
    """Records → raw columns (strings, raw JSON tokens, typed scalars), one pass per field."""
    cols: dict[str, pa.Array] = {
        "id": strings(r.id for r in items),
        "trace_id": strings(r.trace_id for r in items),
        "session_id": strings(r.project_id for r in items),
        "parent_run_ids": pa.array([r.parent_run_ids for r in items], pa.list_(pa.string())),
        "dotted_order": strings(r.dotted_order for r in items),
        "is_root": pa.array([r.is_root for r in items], pa.bool_()),
        "name": strings(r.name for r in items),
        "run_type": strings(r.run_type for r in items),
        "status": strings(r.status for r in items),
        "start_time": timestamps(r.start_time for r in items),
        "end_time": timestamps(r.end_time for r in items),
        "first_token_time": timestamps(r.first_token_time for r in items),
        "latency_seconds": pa.array([r.latency_seconds for r in items], pa.float64()),
        "error": strings(r.error for r in items),
        "thread_id": strings(r.thread_id for r in items),
        "reference_example_id": strings(r.reference_example_id for r in items),
        "reference_dataset_id": strings(r.reference_dataset_id for r in items),
        "is_in_dataset": pa.array([r.is_in_dataset for r in items], pa.bool_()),
        "price_model_id": strings(r.price_model_id for r in items),
        "tags": pa.array([r.tags for r in items], pa.list_(pa.string())),
        "app_path": strings(r.app_path for r in items),
        "total_tokens": pa.array([r.total_tokens for r in items], pa.int64()),
        "prompt_tokens": pa.array([r.prompt_tokens for r in items], pa.int64()),
        "completion_tokens": pa.array([r.completion_tokens for r in items], pa.int64()),
        "total_cost": raw_json(r.total_cost for r in items),
        "prompt_cost": raw_json(r.prompt_cost for r in items),
        "completion_cost": raw_json(r.completion_cost for r in items),
        "inputs": raw_json(r.inputs for r in items),
        "outputs": raw_json(r.outputs for r in items),
        "metadata": raw_json(r.metadata for r in items),
        "extra": raw_json(r.extra for r in items),
        "events": raw_json(r.events for r in items),
        "feedback_stats": json_objects(r.feedback_stats for r in items),
        "unknown_fields": unknown_json(unknown, len(items)),
    }
    for side, kind, categories in _DETAIL_FIELDS:
        attr = f"{side}_{kind}_details"
        details = [getattr(r, attr) for r in items]
        cols[attr] = json_objects(details)
        unit = "tokens" if kind == "token" else "cost"
        for cat in categories:
            cols[f"{side}_{cat}_{unit}"] = detail_category(details, cat)
    return from_columns(cols)


def flatten_runs(
    items: Sequence[RunV2], exported_at: datetime, unknown: Sequence[bytes | None] | None = None
) -> pa.Table:
    """The ``runs`` table for these records, sorted by (session_id, start_time, id).

    ``unknown`` holds, per item, the JSON of fields the API sent that ``RunV2`` does not know.
    """
    if not items:
        return RUNS.empty_table()
    staged = _stage(items, unknown)
    token_detail_cols = [
        f"{side}_{cat}_tokens" for side, kind, cats in _DETAIL_FIELDS if kind == "token" for cat in cats
    ]
    cost_detail_cols = [
        f"{side}_{cat}_cost" for side, kind, cats in _DETAIL_FIELDS if kind == "cost" for cat in cats
    ]
    frame = staged.with_columns(
        pl.col("run_type").str.to_lowercase(),
        pl.col("status").str.to_lowercase(),
        pl.col("parent_run_ids").list.last().alias("parent_run_id"),
        pl.col("metadata").str.json_path_match("$.ls_model_name").alias("ls_model_name"),
        pl.col("metadata").str.json_path_match("$.ls_provider").alias("ls_provider"),
        *(money(pl.col(c)) for c in ("total_cost", "prompt_cost", "completion_cost", *cost_detail_cols)),
        *(pl.col(c).cast(pl.Int64) for c in token_detail_cols),
        exported_at_value(exported_at),
    ).sort("session_id", "start_time", "id", nulls_last=True)
    return conform(frame, RUNS)


def flatten_run_feedback_stats(items: Sequence[RunV2], exported_at: datetime) -> pa.Table:
    """One row per (run, feedback key) of the runs' ``feedback_stats``."""
    with_stats = [r for r in items if r.feedback_stats]
    if not with_stats:
        return RUN_FEEDBACK_STATS.empty_table()
    long = from_columns(
        feedback_stats_long([r.id for r in with_stats], [r.feedback_stats for r in with_stats])
    )
    owners = from_columns(
        {
            "owner_id": strings(r.id for r in with_stats),
            "session_id": strings(r.project_id for r in with_stats),
            "start_time": timestamps(r.start_time for r in with_stats),
        }
    )
    frame = (
        long.join(owners, on="owner_id", how="left")
        .rename({"owner_id": "run_id"})
        .with_columns(exported_at_value(exported_at))
        .sort("session_id", "start_time", "run_id", "feedback_key", nulls_last=True)
    )
    return conform(frame, RUN_FEEDBACK_STATS)
