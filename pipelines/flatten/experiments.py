"""Experiments: examples-with-runs pages → ``dataset_examples``, ``experiment_runs`` and
``experiment_feedback``; grouped pages → ``experiment_groups``.

Feedback is typed down to the value: a score or value keeps its JSON type in its own column
(number, boolean, string, JSON for objects and arrays); nothing of mixed type is stringified together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import polars as pl
import pyarrow as pa

from pipelines.flatten.common import (
    TIMESTAMP,
    column,
    exported_at_column,
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
from pipelines.records import ExampleV1, FeedbackV1, GroupV1, Rejected, RunV1, decode_items

DATASET_EXAMPLES = pa.schema(
    [
        column("dataset_id", pa.string(), "Dataset id", "dataset_id", nullable=False),
        column("example_id", pa.string(), "Example id", "id", nullable=False),
        column("name", pa.string(), "Example name", "name"),
        column("created_at", TIMESTAMP, "Creation time, UTC", "created_at"),
        column("modified_at", TIMESTAMP, "Last modification, UTC", "modified_at"),
        column("source_run_id", pa.string(), "Run the example was made from", "source_run_id"),
        column("inputs", pa.string(), "JSON text of the inputs", "inputs", json=True),
        column("outputs", pa.string(), "JSON text of the reference outputs", "outputs", json=True),
        column("metadata", pa.string(), "JSON text of the example metadata", "metadata", json=True),
        column(
            "run_count",
            pa.int64(),
            "Runs of this day's experiments on the example",
            "len(runs)",
            nullable=False,
        ),
        unknown_fields_column(),
        exported_at_column(),
    ]
)

EXPERIMENT_RUNS = pa.schema(
    [
        column("id", pa.string(), "Run id", "runs[].id", nullable=False),
        column("session_id", pa.string(), "Experiment (session) id", "runs[].session_id"),
        column("dataset_id", pa.string(), "Dataset id", "dataset_id", nullable=False),
        column(
            "example_id",
            pa.string(),
            "Example the run was evaluated on",
            "id (of the example)",
            nullable=False,
        ),
        column("trace_id", pa.string(), "Trace id", "runs[].trace_id"),
        column("parent_run_id", pa.string(), "Parent run id", "runs[].parent_run_id"),
        column("dotted_order", pa.string(), "Position in the trace tree", "runs[].dotted_order"),
        column("name", pa.string(), "Run name", "runs[].name"),
        column("run_type", pa.string(), "Run type (lowercase)", "runs[].run_type"),
        column("status", pa.string(), "success, error or pending (lowercase)", "runs[].status"),
        column("start_time", TIMESTAMP, "Start time, UTC", "runs[].start_time"),
        column("end_time", TIMESTAMP, "End time, UTC", "runs[].end_time"),
        column("latency_seconds", pa.float64(), "end_time - start_time, seconds", "(derived)"),
        column("error", pa.string(), "Error text", "runs[].error"),
        column(
            "ls_model_name",
            pa.string(),
            "Model name from run metadata",
            "runs[].extra.metadata.ls_model_name",
        ),
        column("ls_provider", pa.string(), "Provider from run metadata", "runs[].extra.metadata.ls_provider"),
        *usage_columns("runs[]."),
        column("tags", pa.list_(pa.string()), "Tags", "runs[].tags"),
        column("app_path", pa.string(), "Path in the LangSmith app", "runs[].app_path"),
        column("metadata", pa.string(), "JSON of the run metadata", "runs[].extra.metadata", json=True),
        column("inputs", pa.string(), "JSON text of the inputs", "runs[].inputs", json=True),
        column("outputs", pa.string(), "JSON text of the outputs", "runs[].outputs", json=True),
        column("extra", pa.string(), "JSON text of extra", "runs[].extra", json=True),
        column("events", pa.string(), "JSON array of events", "runs[].events", json=True),
        column(
            "feedback_stats",
            pa.string(),
            "JSON of the run's feedback stats",
            "runs[].feedback_stats",
            json=True,
        ),
        column(
            "feedback_count", pa.int64(), "Feedback rows on the run", "len(runs[].feedbacks)", nullable=False
        ),
        unknown_fields_column(),
        exported_at_column(),
    ]
)

EXPERIMENT_FEEDBACK = pa.schema(
    [
        column("id", pa.string(), "Feedback id", "feedbacks[].id", nullable=False),
        column("run_id", pa.string(), "Run the feedback is on", "runs[].id", nullable=False),
        column("session_id", pa.string(), "Experiment (session) id", "runs[].session_id"),
        column("dataset_id", pa.string(), "Dataset id", "dataset_id", nullable=False),
        column("example_id", pa.string(), "Example id", "id (of the example)", nullable=False),
        column(
            "key", pa.string(), "Feedback key (evaluator or criterion)", "feedbacks[].key", nullable=False
        ),
        column("score_number", pa.float64(), "Score when it is a number", "feedbacks[].score"),
        column("score_bool", pa.bool_(), "Score when it is a boolean", "feedbacks[].score"),
        column("value_number", pa.float64(), "Value when it is a number", "feedbacks[].value"),
        column("value_bool", pa.bool_(), "Value when it is a boolean", "feedbacks[].value"),
        column("value_string", pa.string(), "Value when it is a string", "feedbacks[].value"),
        column(
            "value_json",
            pa.string(),
            "Value when it is an object or array (JSON text)",
            "feedbacks[].value",
            json=True,
        ),
        column("comment", pa.string(), "Comment", "feedbacks[].comment"),
        column("correction_string", pa.string(), "Correction when it is a string", "feedbacks[].correction"),
        column(
            "correction_json",
            pa.string(),
            "Correction when it is an object (JSON text)",
            "feedbacks[].correction",
            json=True,
        ),
        column("source_type", pa.string(), "api, app, model, ...", "feedbacks[].feedback_source.type"),
        column(
            "source_user_id", pa.string(), "User who gave the feedback", "feedbacks[].feedback_source.user_id"
        ),
        column("source_user_name", pa.string(), "Name of that user", "feedbacks[].feedback_source.user_name"),
        column(
            "source_ls_user_id", pa.string(), "LangSmith user id", "feedbacks[].feedback_source.ls_user_id"
        ),
        column(
            "source_metadata",
            pa.string(),
            "JSON of the source metadata (e.g. the evaluator run)",
            "feedbacks[].feedback_source.metadata",
            json=True,
        ),
        column("created_at", TIMESTAMP, "Creation time, UTC", "feedbacks[].created_at"),
        column("modified_at", TIMESTAMP, "Last modification, UTC", "feedbacks[].modified_at"),
        column("trace_id", pa.string(), "Trace id", "feedbacks[].trace_id"),
        column("feedback_group_id", pa.string(), "Feedback group id", "feedbacks[].feedback_group_id"),
        column(
            "comparative_experiment_id",
            pa.string(),
            "Pairwise experiment id",
            "feedbacks[].comparative_experiment_id",
        ),
        column("extra", pa.string(), "JSON of extra", "feedbacks[].extra", json=True),
        unknown_fields_column(),
        exported_at_column(),
    ]
)

EXPERIMENT_GROUPS = pa.schema(
    [
        column("dataset_id", pa.string(), "Dataset id", "(request)", nullable=False),
        column("group_by", pa.string(), "run_metadata or example_metadata", "(request)", nullable=False),
        column("metadata_key", pa.string(), "Metadata key grouped on", "(request)", nullable=False),
        column(
            "group_key",
            pa.string(),
            "The metadata value of the group (numbers as text)",
            "groups[].group_key",
            nullable=False,
        ),
        column(
            "session_id", pa.string(), "Experiment (session) id", "groups[].sessions[].id", nullable=False
        ),
        column("session_name", pa.string(), "Experiment name", "groups[].sessions[].name"),
        column("filter", pa.string(), "LangSmith filter expression of the group", "groups[].filter"),
        column(
            "example_count",
            pa.int64(),
            "Examples of the group run in this session",
            "groups[].sessions[].example_count",
        ),
        column("run_count", pa.int64(), "Runs of the group in this session", "groups[].sessions[].run_count"),
        *usage_columns("groups[].sessions[]."),
        column("min_start_time", TIMESTAMP, "First run start, UTC", "groups[].sessions[].min_start_time"),
        column("max_start_time", TIMESTAMP, "Last run start, UTC", "groups[].sessions[].max_start_time"),
        column("latency_p50", pa.float64(), "Median latency, seconds", "groups[].sessions[].latency_p50"),
        column("latency_p99", pa.float64(), "99th percentile latency", "groups[].sessions[].latency_p99"),
        column("error_rate", pa.float64(), "Share of errored runs", "groups[].sessions[].error_rate"),
        column(
            "feedback_stats",
            pa.string(),
            "JSON of the session's feedback stats in the group",
            "groups[].sessions[].feedback_stats",
            json=True,
        ),
        column("group_example_count", pa.int64(), "Examples in the whole group", "groups[].example_count"),
        exported_at_column(),
    ]
)


@dataclass
class ExperimentRows:
    """One page of examples-with-runs, unnested level by level."""

    examples: list[ExampleV1] = field(default_factory=list)
    example_unknown: list[bytes | None] = field(default_factory=list)
    runs: list[RunV1] = field(default_factory=list)
    run_examples: list[ExampleV1] = field(default_factory=list)
    run_unknown: list[bytes | None] = field(default_factory=list)
    run_feedback_counts: list[int] = field(default_factory=list)
    feedback: list[FeedbackV1] = field(default_factory=list)
    feedback_runs: list[RunV1] = field(default_factory=list)
    feedback_examples: list[ExampleV1] = field(default_factory=list)
    feedback_unknown: list[bytes | None] = field(default_factory=list)
    rejected: list[tuple[str, Rejected]] = field(default_factory=list)


def unnest_examples(examples: Sequence[ExampleV1], unknown: Sequence[bytes | None] | None) -> ExperimentRows:
    """Examples → their runs → their feedback rows, each level decoded with drift handling."""
    rows = ExperimentRows()
    rows.examples = list(examples)
    rows.example_unknown = list(unknown) if unknown is not None else [None] * len(examples)
    for example in examples:
        runs = decode_items(example.runs, RunV1)
        rows.rejected.extend(("experiment_runs", r) for r in runs.rejected)
        for i, run in enumerate(runs.items):
            feedback = decode_items(run.feedbacks, FeedbackV1)
            rows.rejected.extend(("experiment_feedback", r) for r in feedback.rejected)
            rows.runs.append(run)
            rows.run_examples.append(example)
            rows.run_unknown.append(runs.unknown[i] if runs.unknown else None)
            rows.run_feedback_counts.append(len(feedback.items))
            for j, fb in enumerate(feedback.items):
                rows.feedback.append(fb)
                rows.feedback_runs.append(run)
                rows.feedback_examples.append(example)
                rows.feedback_unknown.append(feedback.unknown[j] if feedback.unknown else None)
    return rows


def flatten_dataset_examples(rows: ExperimentRows, exported_at: datetime) -> pa.Table:
    items = rows.examples
    if not items:
        return DATASET_EXAMPLES.empty_table()
    frame = from_columns(
        {
            "dataset_id": strings(e.dataset_id for e in items),
            "example_id": strings(e.id for e in items),
            "name": strings(e.name for e in items),
            "created_at": timestamps(e.created_at for e in items),
            "modified_at": timestamps(e.modified_at for e in items),
            "source_run_id": strings(e.source_run_id for e in items),
            "inputs": raw_json(e.inputs for e in items),
            "outputs": raw_json(e.outputs for e in items),
            "metadata": raw_json(e.metadata for e in items),
            "run_count": pa.array([len(e.runs) for e in items], pa.int64()),
            "unknown_fields": unknown_json(rows.example_unknown, len(items)),
        }
    ).with_columns(exported_at_value(exported_at))
    return conform(frame.sort("dataset_id", "example_id"), DATASET_EXAMPLES)


def flatten_experiment_runs(rows: ExperimentRows, exported_at: datetime) -> pa.Table:
    runs = rows.runs
    if not runs:
        return EXPERIMENT_RUNS.empty_table()
    staged = from_columns(
        {
            "id": strings(r.id for r in runs),
            "session_id": strings(r.session_id for r in runs),
            "dataset_id": strings(e.dataset_id for e in rows.run_examples),
            "example_id": strings(e.id for e in rows.run_examples),
            "trace_id": strings(r.trace_id for r in runs),
            "parent_run_id": strings(r.parent_run_id for r in runs),
            "dotted_order": strings(r.dotted_order for r in runs),
            "name": strings(r.name for r in runs),
            "run_type": strings(r.run_type for r in runs),
            "status": strings(r.status for r in runs),
            "start_time": timestamps(r.start_time for r in runs),
            "end_time": timestamps(r.end_time for r in runs),
            "error": strings(r.error for r in runs),
            "total_tokens": pa.array([r.total_tokens for r in runs], pa.int64()),
            "prompt_tokens": pa.array([r.prompt_tokens for r in runs], pa.int64()),
            "completion_tokens": pa.array([r.completion_tokens for r in runs], pa.int64()),
            "total_cost": money_array(raw_json(r.total_cost for r in runs)),
            "prompt_cost": money_array(raw_json(r.prompt_cost for r in runs)),
            "completion_cost": money_array(raw_json(r.completion_cost for r in runs)),
            "tags": pa.array([r.tags for r in runs], pa.list_(pa.string())),
            "app_path": strings(r.app_path for r in runs),
            "inputs": raw_json(r.inputs for r in runs),
            "outputs": raw_json(r.outputs for r in runs),
            "extra": raw_json(r.extra for r in runs),
            "events": raw_json(r.events for r in runs),
            "feedback_stats": json_objects(r.feedback_stats for r in runs),
            "feedback_count": pa.array(rows.run_feedback_counts, pa.int64()),
            "unknown_fields": unknown_json(rows.run_unknown, len(runs)),
        }
    )
    frame = staged.with_columns(
        pl.col("run_type").str.to_lowercase(),
        pl.col("status").str.to_lowercase(),
        ((pl.col("end_time") - pl.col("start_time")).dt.total_microseconds() / 1e6).alias("latency_seconds"),
        pl.col("extra").str.json_path_match("$.metadata").alias("metadata"),
        pl.col("extra").str.json_path_match("$.metadata.ls_model_name").alias("ls_model_name"),
        pl.col("extra").str.json_path_match("$.metadata.ls_provider").alias("ls_provider"),
        exported_at_value(exported_at),
    ).sort("session_id", "start_time", "id", nulls_last=True)
    return conform(frame, EXPERIMENT_RUNS)


def _typed(values: Sequence[Any], kind: type) -> list[Any]:
    # bool is a subclass of int, never of float: msgspec decodes JSON numbers to float here.
    return [v if type(v) is kind else None for v in values]


def _json_of(values: Sequence[Any]) -> list[bytes | None]:
    return [msgspec.json.encode(v) if isinstance(v, dict | list) else None for v in values]


def flatten_experiment_feedback(rows: ExperimentRows, exported_at: datetime) -> pa.Table:
    items = rows.feedback
    if not items:
        return EXPERIMENT_FEEDBACK.empty_table()
    scores = [f.score for f in items]
    values = [f.value for f in items]
    corrections = [f.correction for f in items]
    sources = [f.feedback_source for f in items]
    frame = from_columns(
        {
            "id": strings(f.id for f in items),
            "run_id": strings(r.id for r in rows.feedback_runs),
            "session_id": strings(r.session_id for r in rows.feedback_runs),
            "dataset_id": strings(e.dataset_id for e in rows.feedback_examples),
            "example_id": strings(e.id for e in rows.feedback_examples),
            "key": strings(f.key for f in items),
            "score_number": pa.array(_typed(scores, float), pa.float64()),
            "score_bool": pa.array(_typed(scores, bool), pa.bool_()),
            "value_number": pa.array(_typed(values, float), pa.float64()),
            "value_bool": pa.array(_typed(values, bool), pa.bool_()),
            "value_string": pa.array(_typed(values, str), pa.string()),
            "value_json": pa.array(_json_of(values), pa.string()),
            "comment": strings(f.comment for f in items),
            "correction_string": pa.array(_typed(corrections, str), pa.string()),
            "correction_json": pa.array(_json_of(corrections), pa.string()),
            "source_type": strings(s.type if s else None for s in sources),
            "source_user_id": strings(s.user_id if s else None for s in sources),
            "source_user_name": strings(s.user_name if s else None for s in sources),
            "source_ls_user_id": strings(s.ls_user_id if s else None for s in sources),
            "source_metadata": raw_json(s.metadata if s else None for s in sources),
            "created_at": timestamps(f.created_at for f in items),
            "modified_at": timestamps(f.modified_at for f in items),
            "trace_id": strings(f.trace_id for f in items),
            "feedback_group_id": strings(f.feedback_group_id for f in items),
            "comparative_experiment_id": strings(f.comparative_experiment_id for f in items),
            "extra": raw_json(f.extra for f in items),
            "unknown_fields": unknown_json(rows.feedback_unknown, len(items)),
        }
    ).with_columns(exported_at_value(exported_at))
    return conform(frame.sort("session_id", "run_id", "key", "id"), EXPERIMENT_FEEDBACK)


def _group_key(raw: msgspec.Raw) -> str:
    value = msgspec.json.decode(raw)
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def flatten_experiment_groups(
    groups: Sequence[GroupV1], dataset_id: str, group_by: str, metadata_key: str, exported_at: datetime
) -> pa.Table:
    pairs = [(g, s) for g in groups for s in g.sessions]
    if not pairs:
        return EXPERIMENT_GROUPS.empty_table()
    sessions = [s for _, s in pairs]
    frame = from_columns(
        {
            "dataset_id": strings(dataset_id for _ in pairs),
            "group_by": strings(group_by for _ in pairs),
            "metadata_key": strings(metadata_key for _ in pairs),
            "group_key": strings(_group_key(g.group_key) for g, _ in pairs),
            "session_id": strings(s.id for s in sessions),
            "session_name": strings(s.name for s in sessions),
            "filter": strings(g.filter for g, _ in pairs),
            "example_count": pa.array([s.example_count for s in sessions], pa.int64()),
            "run_count": pa.array(
                [s.run_count if s.run_count is not None else s.count for s in sessions], pa.int64()
            ),
            "total_tokens": pa.array([s.total_tokens for s in sessions], pa.int64()),
            "prompt_tokens": pa.array([s.prompt_tokens for s in sessions], pa.int64()),
            "completion_tokens": pa.array([s.completion_tokens for s in sessions], pa.int64()),
            "total_cost": money_array(raw_json(s.total_cost for s in sessions)),
            "prompt_cost": money_array(raw_json(s.prompt_cost for s in sessions)),
            "completion_cost": money_array(raw_json(s.completion_cost for s in sessions)),
            "min_start_time": timestamps(s.min_start_time for s in sessions),
            "max_start_time": timestamps(s.max_start_time for s in sessions),
            "latency_p50": pa.array([s.latency_p50 for s in sessions], pa.float64()),
            "latency_p99": pa.array([s.latency_p99 for s in sessions], pa.float64()),
            "error_rate": pa.array([s.error_rate for s in sessions], pa.float64()),
            "feedback_stats": raw_json(s.feedback_stats for s in sessions),
            "group_example_count": pa.array([g.example_count for g, _ in pairs], pa.int64()),
        }
    )
    frame = frame.with_columns(
        exported_at_value(exported_at),
    ).sort("dataset_id", "group_by", "metadata_key", "group_key", "session_id")
    return conform(frame, EXPERIMENT_GROUPS)
