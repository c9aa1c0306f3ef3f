"""Runs: v2 run records → the ``runs`` and ``run_feedback_stats`` tables.

Records are staged column by column into Arrow, then one Polars expression chain derives the typed
columns (lowercased enums, exact money, promoted details, metadata keys, parent run id).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
import msgspec.structs
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
    money,
    raw_json_columns,
    strings,
    timestamps,
    unknown_fields_column,
    unknown_json,
    usage_columns,
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
        *usage_columns(""),
        *_detail_columns("prompt", "tokens", PROMPT_TOKEN_CATEGORIES),
        *_detail_columns("completion", "tokens", COMPLETION_TOKEN_CATEGORIES),
        *_detail_columns("prompt", "cost", PROMPT_TOKEN_CATEGORIES),
        *_detail_columns("completion", "cost", COMPLETION_TOKEN_CATEGORIES),
        column(
            "prompt_token_details",
            pa.string(),
            "JSON: every prompt token category",
            "prompt_token_details",
            json=True,
        ),
        column(
            "completion_token_details",
            pa.string(),
            "JSON: every completion token category",
            "completion_token_details",
            json=True,
        ),
        column(
            "prompt_cost_details",
            pa.string(),
            "JSON: every prompt cost category",
            "prompt_cost_details",
            json=True,
        ),
        column(
            "completion_cost_details",
            pa.string(),
            "JSON: every completion cost category",
            "completion_cost_details",
            json=True,
        ),
        column("inputs", pa.string(), "JSON text of the inputs, byte-exact", "inputs", json=True),
        column("outputs", pa.string(), "JSON text of the outputs, byte-exact", "outputs", json=True),
        column("metadata", pa.string(), "JSON text of the run metadata", "metadata", json=True),
        column("extra", pa.string(), "JSON text of extra", "extra", json=True),
        column("events", pa.string(), "JSON array of events ({name, time, kwargs})", "events", json=True),
        column(
            "feedback_stats",
            pa.string(),
            "JSON object of feedback stats (see run_feedback_stats)",
            "feedback_stats",
            json=True,
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
        *feedback_stats_columns("feedback_stats"),
        exported_at_column(),
    ]
)

_DETAIL_FIELDS = (
    ("prompt", "token", PROMPT_TOKEN_CATEGORIES),
    ("completion", "token", COMPLETION_TOKEN_CATEGORIES),
    ("prompt", "cost", PROMPT_TOKEN_CATEGORIES),
    ("completion", "cost", COMPLETION_TOKEN_CATEGORIES),
)


# (side, details kind, column unit, category) of every promoted details column
_DETAIL_COLUMNS = [
    (side, kind, "tokens" if kind == "token" else "cost", cat)
    for side, kind, categories in _DETAIL_FIELDS
    for cat in categories
]
_TOKEN_DETAIL_COLUMNS = [f"{s}_{c}_{u}" for s, _, u, c in _DETAIL_COLUMNS if u == "tokens"]
_MONEY_COLUMNS = [
    "total_cost",
    "prompt_cost",
    "completion_cost",
    *(f"{s}_{c}_{u}" for s, _, u, c in _DETAIL_COLUMNS if u == "cost"),
]

_STRING_FIELDS = (
    "id", "trace_id", "project_id", "dotted_order", "name", "run_type", "status", "error", "thread_id",
    "reference_example_id", "reference_dataset_id", "price_model_id", "app_path",
)  # fmt: skip
_RAW_FIELDS = (
    "total_cost", "prompt_cost", "completion_cost", "inputs", "outputs", "metadata", "extra", "events",
    "feedback_stats", "prompt_token_details", "completion_token_details", "prompt_cost_details",
    "completion_cost_details",
)  # fmt: skip
_TYPED_FIELDS: dict[str, pa.DataType] = {
    "parent_run_ids": pa.list_(pa.string()),
    "tags": pa.list_(pa.string()),
    "is_root": pa.bool_(),
    "is_in_dataset": pa.bool_(),
    "start_time": TIMESTAMP,
    "end_time": TIMESTAMP,
    "first_token_time": TIMESTAMP,
    "latency_seconds": pa.float64(),
    "total_tokens": pa.int64(),
    "prompt_tokens": pa.int64(),
    "completion_tokens": pa.int64(),
}


# JSON text columns written as received: they never go through Polars.
_PASSTHROUGH = ("inputs", "outputs", "extra", "events", "feedback_stats")


def _stage(
    items: Sequence[RunV2], unknown: Sequence[bytes | None] | None
) -> tuple[pl.DataFrame, dict[str, pa.Array]]:
    """Records → raw columns: the records are transposed once (C-level), then each column converted."""
    columns = dict(
        zip(RunV2.__struct_fields__, zip(*map(msgspec.structs.astuple, items), strict=True), strict=True)
    )
    staged: dict[str, pa.Array] = {}
    for name in _STRING_FIELDS:
        staged[name] = pa.array(columns[name], pa.string())
    staged.update(zip(_RAW_FIELDS, raw_json_columns([columns[name] for name in _RAW_FIELDS]), strict=True))
    for name, type_ in _TYPED_FIELDS.items():
        staged[name] = pa.array(columns[name], type_)
    staged["unknown_fields"] = unknown_json(unknown, len(items))
    passthrough = {name: staged.pop(name) for name in _PASSTHROUGH}
    return from_columns(staged).rename({"project_id": "session_id"}), passthrough


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _order(items: Sequence[RunV2]) -> list[int]:
    """Positions of the records by (session_id, start_time, id), nulls last."""

    def key(i: int) -> tuple[bool, str, bool, datetime, str]:
        r = items[i]
        return (r.project_id is None, r.project_id or "", r.start_time is None, r.start_time or _EPOCH, r.id)

    return sorted(range(len(items)), key=key)


def flatten_runs(
    items: Sequence[RunV2], exported_at: datetime, unknown: Sequence[bytes | None] | None = None
) -> pa.Table:
    """The ``runs`` table for these records, sorted by (session_id, start_time, id).

    ``unknown`` holds, per item, the JSON of fields the API sent that ``RunV2`` does not know.
    The records are put in order before they are staged: reordering pointers is cheap, reordering
    the staged inputs and outputs would copy every byte again.
    """
    if not items:
        return RUNS.empty_table()
    order = _order(items)
    items = [items[i] for i in order]
    unknown = None if unknown is None else [unknown[i] for i in order]
    staged, passthrough = _stage(items, unknown)
    frame = staged.with_columns(
        detail_category(pl.col(f"{side}_{kind}_details"), cat).alias(f"{side}_{cat}_{unit}")
        for side, kind, unit, cat in _DETAIL_COLUMNS
    ).with_columns(
        pl.col("run_type").str.to_lowercase(),
        pl.col("status").str.to_lowercase(),
        pl.col("parent_run_ids").list.last().alias("parent_run_id"),
        pl.col("metadata").str.json_path_match("$.ls_model_name").alias("ls_model_name"),
        pl.col("metadata").str.json_path_match("$.ls_provider").alias("ls_provider"),
        *(money(pl.col(c)) for c in _MONEY_COLUMNS),
        *(pl.col(c).cast(pl.Int64) for c in _TOKEN_DETAIL_COLUMNS),
        exported_at_value(exported_at),
    )
    return conform(frame, RUNS, passthrough)


_decode_stats = msgspec.json.Decoder(type=dict[str, msgspec.Raw]).decode


def flatten_run_feedback_stats(items: Sequence[RunV2], exported_at: datetime) -> pa.Table:
    """One row per (run, feedback key) of the runs' ``feedback_stats``."""
    with_stats = [r for r in items if bytes(r.feedback_stats) != b"null"]
    if not with_stats:
        return RUN_FEEDBACK_STATS.empty_table()
    long = from_columns(
        feedback_stats_long([r.id for r in with_stats], [_decode_stats(r.feedback_stats) for r in with_stats])
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
