"""Runs: v2 run records → the ``runs`` and ``run_feedback_stats`` tables, in Arrow alone.

The records are put in order, transposed once into columns (C-level), and each column becomes an
Arrow array; the derived columns (lowercased enums, exact money, promoted details, metadata keys,
parent run id) come from Arrow compute kernels or one pass over a column. No Polars: this is the
hot path of every worker process, which need not load it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
import msgspec.structs
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.flatten.common import (
    COMPLETION_TOKEN_CATEGORIES,
    MONEY,
    PROMPT_TOKEN_CATEGORIES,
    TIMESTAMP,
    column,
    exported_at_array,
    exported_at_column,
    feedback_stats_columns,
    feedback_stats_long,
    money_array,
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _order(items: Sequence[RunV2]) -> list[int]:
    """Positions of the records by (session_id, start_time, id), nulls last."""

    def key(i: int) -> tuple[bool, str, bool, datetime, str]:
        r = items[i]
        return (r.project_id is None, r.project_id or "", r.start_time is None, r.start_time or _EPOCH, r.id)

    return sorted(range(len(items)), key=key)


class _ModelKeys(msgspec.Struct, gc=False):
    """The metadata keys promoted to columns (every other key is skipped, not decoded)."""

    ls_model_name: msgspec.Raw = msgspec.Raw(b"null")
    ls_provider: msgspec.Raw = msgspec.Raw(b"null")


class _ModelNames(msgspec.Struct, gc=False):
    """The same keys as they almost always are: strings."""

    ls_model_name: str | None = None
    ls_provider: str | None = None


# All of a chunk's metadata objects at once, as one JSON array: one call, not one per run.
_decode_model_names = msgspec.json.Decoder(type=list[_ModelNames | None]).decode
_decode_model_keys = msgspec.json.Decoder(type=_ModelKeys).decode
_decode_text = msgspec.json.Decoder(type=str).decode


def _metadata_text(token: msgspec.Raw) -> str | None:
    """A metadata value as text: a JSON string decoded, null as null, anything else as its JSON."""
    text = bytes(token)  # a short value
    if text == b"null":
        return None
    return _decode_text(text) if text[:1] == b'"' else text.decode()


def _model_keys(metadata: Sequence[msgspec.Raw]) -> tuple[pa.Array, pa.Array]:
    """``ls_model_name`` and ``ls_provider`` of each run's metadata (null when it is not an object)."""
    try:
        found = _decode_model_names(b"[" + b",".join(metadata) + b"]")  # type: ignore[arg-type]
        names = [None if f is None else f.ls_model_name for f in found]
        providers = [None if f is None else f.ls_provider for f in found]
    except msgspec.ValidationError:  # a value that is not a string, or metadata that is not an object
        names, providers = [], []
        for raw in metadata:
            try:
                keys = _decode_model_keys(raw)
            except msgspec.ValidationError:
                names.append(None)
                providers.append(None)
                continue
            names.append(_metadata_text(keys.ls_model_name))
            providers.append(_metadata_text(keys.ls_provider))
    return pa.array(names, pa.string()), pa.array(providers, pa.string())


def _detail(details: pa.Array, category: str, type_: pa.DataType) -> pa.Array:
    """One category of a details object (JSON text, ``{category: number}``) from the number's exact
    text: a regular expression over the raw text, so no number goes through a float. The object is
    flat (category → number), so the key can only match where it is a key."""
    found = pc.extract_regex(details, rf'"{category}"\s*:\s*(?P<v>-?[0-9][0-9.eE+-]*)')
    text = pc.struct_field(found, "v")
    return money_array(text) if type_ == MONEY else pc.cast(text, type_)


def _last(lists: Sequence[list[str] | None]) -> pa.Array:
    return pa.array([ids[-1] if ids else None for ids in lists], pa.string())


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
    records = dict(
        zip(RunV2.__struct_fields__, zip(*map(msgspec.structs.astuple, items), strict=True), strict=True)
    )
    columns: dict[str, pa.Array] = {}
    for name in _STRING_FIELDS:
        columns[name] = pa.array(records[name], pa.string())
    columns.update(zip(_RAW_FIELDS, raw_json_columns([records[name] for name in _RAW_FIELDS]), strict=True))
    for name, type_ in _TYPED_FIELDS.items():
        columns[name] = pa.array(records[name], type_)
    columns["session_id"] = columns.pop("project_id")
    columns["run_type"] = pc.utf8_lower(columns["run_type"])
    columns["status"] = pc.utf8_lower(columns["status"])
    columns["parent_run_id"] = _last(records["parent_run_ids"])
    columns["ls_model_name"], columns["ls_provider"] = _model_keys(records["metadata"])
    for side, kind, unit, category in _DETAIL_COLUMNS:
        name = f"{side}_{category}_{unit}"
        columns[name] = _detail(columns[f"{side}_{kind}_details"], category, RUNS.field(name).type)
    for name in ("total_cost", "prompt_cost", "completion_cost"):
        columns[name] = money_array(columns[name])
    columns["unknown_fields"] = unknown_json(unknown, len(items))
    columns["exported_at"] = exported_at_array(exported_at, len(items))
    return pa.Table.from_arrays([columns[name] for name in RUNS.names], schema=RUNS)


_decode_stats = msgspec.json.Decoder(type=dict[str, msgspec.Raw]).decode


def flatten_run_feedback_stats(items: Sequence[RunV2], exported_at: datetime) -> pa.Table:
    """One row per (run, feedback key) of the runs' ``feedback_stats``, sorted by (session_id,
    start_time, run_id, feedback_key)."""
    with_stats = [r for r in items if bytes(r.feedback_stats) != b"null"]
    if not with_stats:
        return RUN_FEEDBACK_STATS.empty_table()
    with_stats = [with_stats[i] for i in _order(with_stats)]
    stats = [dict(sorted(_decode_stats(r.feedback_stats).items())) for r in with_stats]
    long = feedback_stats_long([r.id for r in with_stats], stats)
    owners = [r for r, stat in zip(with_stats, stats, strict=True) for _ in stat]  # once per key
    columns = {
        "run_id": long.pop("owner_id"),
        "session_id": strings(r.project_id for r in owners),
        "start_time": timestamps(r.start_time for r in owners),
        **long,
        "exported_at": exported_at_array(exported_at, len(owners)),
    }
    schema = RUN_FEEDBACK_STATS
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)
