"""Sessions: tracer sessions (tracing projects and experiments) → ``sessions`` and
``session_feedback_stats`` snapshot tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import polars as pl
import pyarrow as pa

from pipelines.flatten.common import (
    TIMESTAMP,
    column,
    exported_at_column,
    feedback_stats_columns,
    feedback_stats_long,
    json_objects,
    money_array,
    raw_json,
    strings,
    timestamps,
    unknown_fields_column,
    unknown_json,
    usage_columns,
)
from pipelines.flatten.frames import conform, exported_at_value, from_columns
from pipelines.records import SessionV1

SESSIONS = pa.schema(
    [
        column("id", pa.string(), "Session id (tracing project or experiment)", "id", nullable=False),
        column("tenant_id", pa.string(), "Workspace id", "tenant_id"),
        column("name", pa.string(), "Project or experiment name", "name"),
        column("description", pa.string(), "Description", "description"),
        column(
            "is_experiment",
            pa.bool_(),
            "True for an experiment (a reference dataset is set)",
            "reference_dataset_id is not null",
            nullable=False,
        ),
        column("reference_dataset_id", pa.string(), "Dataset an experiment ran on", "reference_dataset_id"),
        column("default_dataset_id", pa.string(), "Default dataset of the project", "default_dataset_id"),
        column("start_time", TIMESTAMP, "Creation / start time, UTC", "start_time"),
        column("end_time", TIMESTAMP, "End time, UTC", "end_time"),
        column("trace_tier", pa.string(), "longlived or shortlived", "trace_tier"),
        column("run_count", pa.int64(), "Runs in the session", "run_count"),
        column("latency_p50", pa.float64(), "Median run latency, seconds", "latency_p50"),
        column("latency_p99", pa.float64(), "99th percentile run latency, seconds", "latency_p99"),
        column("first_token_p50", pa.float64(), "Median time to first token, seconds", "first_token_p50"),
        column("first_token_p99", pa.float64(), "99th percentile time to first token", "first_token_p99"),
        *usage_columns(""),
        column("last_run_start_time", TIMESTAMP, "Start of the latest run, UTC", "last_run_start_time"),
        column("error_rate", pa.float64(), "Share of runs that errored", "error_rate"),
        column("streaming_rate", pa.float64(), "Share of runs that streamed", "streaming_rate"),
        column("test_run_number", pa.int64(), "Experiment number on its dataset", "test_run_number"),
        column(
            "metadata",
            pa.string(),
            "JSON of extra.metadata (experiment metadata such as the model)",
            "extra.metadata",
            json=True,
        ),
        column("extra", pa.string(), "JSON text of extra", "extra", json=True),
        column(
            "feedback_stats",
            pa.string(),
            "JSON of run-level feedback stats (see session_feedback_stats)",
            "feedback_stats",
            json=True,
        ),
        column(
            "session_feedback_stats",
            pa.string(),
            "JSON of session-level feedback stats",
            "session_feedback_stats",
            json=True,
        ),
        unknown_fields_column(),
        column("snapshot_at", TIMESTAMP, "When the snapshot was taken, UTC", "(export)", nullable=False),
    ]
)

SESSION_FEEDBACK_STATS = pa.schema(
    [
        column("session_id", pa.string(), "Session id", "id", nullable=False),
        column(
            "level",
            pa.string(),
            "run: aggregated run feedback; session: feedback on the session itself",
            "feedback_stats / session_feedback_stats",
            nullable=False,
        ),
        *feedback_stats_columns("feedback_stats | session_feedback_stats"),
        column("snapshot_at", TIMESTAMP, "When the snapshot was taken, UTC", "(export)", nullable=False),
    ]
)


def flatten_sessions(
    items: Sequence[SessionV1], snapshot_at: datetime, unknown: Sequence[bytes | None] | None = None
) -> pa.Table:
    if not items:
        return SESSIONS.empty_table()
    staged = from_columns(
        {
            "id": strings(s.id for s in items),
            "tenant_id": strings(s.tenant_id for s in items),
            "name": strings(s.name for s in items),
            "description": strings(s.description for s in items),
            "reference_dataset_id": strings(s.reference_dataset_id for s in items),
            "default_dataset_id": strings(s.default_dataset_id for s in items),
            "start_time": timestamps(s.start_time for s in items),
            "end_time": timestamps(s.end_time for s in items),
            "trace_tier": strings(s.trace_tier for s in items),
            "run_count": pa.array([s.run_count for s in items], pa.int64()),
            "latency_p50": pa.array([s.latency_p50 for s in items], pa.float64()),
            "latency_p99": pa.array([s.latency_p99 for s in items], pa.float64()),
            "first_token_p50": pa.array([s.first_token_p50 for s in items], pa.float64()),
            "first_token_p99": pa.array([s.first_token_p99 for s in items], pa.float64()),
            "total_tokens": pa.array([s.total_tokens for s in items], pa.int64()),
            "prompt_tokens": pa.array([s.prompt_tokens for s in items], pa.int64()),
            "completion_tokens": pa.array([s.completion_tokens for s in items], pa.int64()),
            "total_cost": money_array(raw_json(s.total_cost for s in items)),
            "prompt_cost": money_array(raw_json(s.prompt_cost for s in items)),
            "completion_cost": money_array(raw_json(s.completion_cost for s in items)),
            "last_run_start_time": timestamps(s.last_run_start_time for s in items),
            "error_rate": pa.array([s.error_rate for s in items], pa.float64()),
            "streaming_rate": pa.array([s.streaming_rate for s in items], pa.float64()),
            "test_run_number": pa.array([s.test_run_number for s in items], pa.int64()),
            "extra": raw_json(s.extra for s in items),
            "feedback_stats": json_objects(s.feedback_stats for s in items),
            "session_feedback_stats": json_objects(s.session_feedback_stats for s in items),
            "unknown_fields": unknown_json(unknown, len(items)),
        }
    )
    frame = staged.with_columns(
        pl.col("reference_dataset_id").is_not_null().alias("is_experiment"),
        pl.col("extra").str.json_path_match("$.metadata").alias("metadata"),
        pl.lit(snapshot_at, dtype=pl.Datetime("us", "UTC")).alias("snapshot_at"),
    ).sort("id")
    return conform(frame, SESSIONS)


def flatten_session_feedback_stats(items: Sequence[SessionV1], snapshot_at: datetime) -> pa.Table:
    frames = []
    for level, attr in (("run", "feedback_stats"), ("session", "session_feedback_stats")):
        owners = [s for s in items if getattr(s, attr)]
        if owners:
            long = feedback_stats_long([s.id for s in owners], [getattr(s, attr) for s in owners])
            frames.append(from_columns(long).with_columns(pl.lit(level).alias("level")))
    if not frames:
        return SESSION_FEEDBACK_STATS.empty_table()
    frame = (
        pl.concat(frames)
        .rename({"owner_id": "session_id"})
        .with_columns(pl.lit(snapshot_at, dtype=pl.Datetime("us", "UTC")).alias("snapshot_at"))
        .sort("session_id", "level", "feedback_key")
    )
    return conform(frame, SESSION_FEEDBACK_STATS)


__all__ = [
    "SESSIONS",
    "SESSION_FEEDBACK_STATS",
    "exported_at_column",
    "exported_at_value",
    "flatten_session_feedback_stats",
    "flatten_sessions",
]
