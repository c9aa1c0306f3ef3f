"""Shared column builders: one small helper per nesting shape, and the declared-schema machinery.

Every table's Arrow schema is declared with a description and the source key of each column (the
README's data dictionary is generated from it), every table is built to it or cast to it before it
is written, and nothing is ever inferred from the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.records import FeedbackStat

MONEY = pa.decimal128(38, 12)
TIMESTAMP = pa.timestamp("us", tz="UTC")
JSON_TEXT = b"json"  # field metadata key of a column of JSON text

# Details categories promoted to typed columns; every category (known or not) stays in the JSON column.
PROMPT_TOKEN_CATEGORIES = ("cache_read", "cache_creation", "audio")
COMPLETION_TOKEN_CATEGORIES = ("reasoning", "audio")

_encode = msgspec.json.Encoder().encode


def column(
    name: str,
    type_: pa.DataType,
    description: str,
    source: str,
    *,
    nullable: bool = True,
    json: bool = False,
) -> pa.Field:
    """A declared column: its description and source key travel in the field metadata, and so does
    ``json``: the column holds JSON text (files carry no statistics for it: ``pipelines.sink``)."""
    metadata = {b"description": description.encode(), b"source": source.encode()}
    if json:
        metadata[JSON_TEXT] = b"true"
    return pa.field(name, type_, nullable=nullable, metadata=metadata)


USAGE_COLUMNS = (
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "total_cost",
    "prompt_cost",
    "completion_cost",
)


def usage_columns(source_prefix: str = "") -> list[pa.Field]:
    """Token counts (int64) and costs (exact decimals, USD) as every table with usage declares them."""
    meanings = (
        "Total tokens", "Prompt (input) tokens", "Completion (output) tokens",
        "Total cost, USD, exact", "Prompt cost, USD, exact", "Completion cost, USD, exact",
    )  # fmt: skip
    return [
        column(name, pa.int64() if name.endswith("tokens") else MONEY, meaning, f"{source_prefix}{name}")
        for name, meaning in zip(USAGE_COLUMNS, meanings, strict=True)
    ]


def unknown_fields_column() -> pa.Field:
    return column(
        "unknown_fields",
        pa.string(),
        "JSON object of fields the API sent that this version does not know (schema drift), else null",
        "(any new key)",
        json=True,
    )


def exported_at_column() -> pa.Field:
    return column("exported_at", TIMESTAMP, "When this export ran, UTC", "(export)", nullable=False)


_WIDE = pa.decimal256(76, 40)


def money_array(tokens: pa.Array) -> pa.Array:
    """Raw JSON money tokens (v2 numbers or v1 decimal strings) as decimal(38, 12), never via a float.

    Rounded half to even at the twelfth decimal, as Polars' decimal cast did before every table used
    this (Arrow's cast would refuse any digit it must drop): a column with such a value is read at 40
    decimals first, which no price reaches, and rounded from there (four times the work).
    """
    text = pc.utf8_trim(tokens, '"')
    try:  # no value has more than twelve decimals (nearly always so): exact as it is, one cheap cast
        return pc.cast(text, MONEY)
    except pa.ArrowInvalid:  # digits to round away, or not a number (which the wide cast reports)
        wide = pc.cast(text, options=pc.CastOptions(_WIDE, allow_decimal_truncate=True))
    return pc.cast(pc.round(wide, ndigits=MONEY.scale, round_mode="half_to_even"), MONEY)


def exported_at_array(moment: datetime, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(moment, TIMESTAMP), n)


def unknown_json(unknown: Sequence[bytes | None] | None, n: int) -> pa.Array:
    return pa.array(list(unknown) if unknown is not None else [None] * n, pa.string())


def describe(schema: pa.Schema) -> list[tuple[str, str, str, str]]:
    """(column, type, meaning, source) rows for the data dictionary."""
    rows = []
    for f in schema:
        meta = f.metadata or {}
        rows.append(
            (
                f.name,
                str(f.type),
                meta.get(b"description", b"").decode(),
                meta.get(b"source", b"").decode(),
            )
        )
    return rows


# --- staging: typed records -> Arrow arrays (one pass per column, no per-row dicts) ---------------


_NULL = msgspec.Raw(b"null")
_INT32_MAX = 2**31 - 1


def raw_json(values: Iterable[msgspec.Raw | None]) -> pa.Array:
    """Raw JSON tokens as UTF-8 text; a JSON ``null`` (or a missing value) becomes a SQL null."""
    return raw_json_columns([values])[0]


def raw_json_columns(columns: Sequence[Iterable[msgspec.Raw | None]]) -> list[pa.Array]:
    """Several columns of raw JSON tokens (of equal length) as UTF-8 text columns.

    They are assembled from buffers: one ``join`` copies every token into one data buffer, the offsets
    are the running sum of their lengths, and each column is a slice of the whole; so there is no
    per-value ``bytes`` object (most of a run's bytes are its inputs and outputs) and the fixed cost
    of building, validating and null-checking an array is paid once, not per column.
    """
    given = [c if isinstance(c, list) else list(c) for c in columns]
    n = len(given[0]) if given else 0
    if any(len(c) != n for c in given):
        raise ValueError("raw JSON columns must have the same length")
    tokens = cast(
        "list[msgspec.Raw]",
        [_NULL if v is None else v for c in given for v in c]
        if any(None in c for c in given)
        else [v for c in given for v in c],
    )
    if not tokens:
        return [pa.array([], pa.string()) for _ in given]
    data = b"".join(tokens)  # type: ignore[arg-type]  # Raw is a buffer
    if len(data) > _INT32_MAX:  # more than one string array holds: Arrow splits it into chunks
        return [
            pa.array([bytes(v) for v in tokens[k * n : (k + 1) * n]], pa.string()) for k in range(len(given))
        ]
    lengths = pa.array(list(map(len, tokens)), pa.int32())
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cumulative_sum(lengths)])
    texts = pa.StringArray.from_buffers(len(tokens), offsets.buffers()[1], pa.py_buffer(data))
    texts.validate(full=True)  # UTF-8, as the JSON text must be
    is_null = pc.equal(texts, "null")
    if pc.any(is_null).as_py():
        valid = pc.invert(is_null)
        texts = pa.StringArray.from_buffers(
            len(tokens), texts.buffers()[1], texts.buffers()[2], valid.buffers()[1]
        )
    return [texts.slice(k * n, n) for k in range(len(given))]


def json_objects(values: Iterable[Any]) -> pa.Array:
    """Decoded (small) objects re-encoded as JSON text; Raw members are re-emitted byte for byte."""
    return pa.array([None if v is None else _encode(v) for v in values], pa.string())


def strings(values: Iterable[str | None]) -> pa.Array:
    return pa.array(list(values), pa.string())


def timestamps(values: Iterable[datetime | None]) -> pa.Array:
    return pa.array(list(values), TIMESTAMP)


_decode_stat = msgspec.json.Decoder(type=FeedbackStat, strict=False).decode


def feedback_stats_long(
    owner_ids: Sequence[str], stats: Sequence[dict[str, msgspec.Raw] | None]
) -> dict[str, pa.Array]:
    """``{key: {n, avg, ...}}`` per owner → long columns: one row per (owner, feedback key).

    The typed members are promoted; the whole entry stays as JSON text so nothing is lost. Session
    stats are loosely typed (numbers may come as strings), hence the non-strict decoder.
    """
    owners: list[str] = []
    keys: list[str] = []
    entries: list[msgspec.Raw] = []
    for owner, stat in zip(owner_ids, stats, strict=True):
        if stat:
            for key, entry in stat.items():
                owners.append(owner)
                keys.append(key)
                entries.append(entry)
    decoded = [_decode_stat(e) for e in entries]
    return {
        "owner_id": strings(owners),
        "feedback_key": strings(keys),
        "n": pa.array([d.n for d in decoded], pa.int64()),
        "avg": pa.array([d.avg for d in decoded], pa.float64()),
        "stdev": pa.array([d.stdev for d in decoded], pa.float64()),
        "min": pa.array([d.min for d in decoded], pa.float64()),
        "max": pa.array([d.max for d in decoded], pa.float64()),
        "errors": pa.array([d.errors for d in decoded], pa.int64()),
        "contains_thread_feedback": pa.array([d.contains_thread_feedback for d in decoded], pa.bool_()),
        "values": raw_json(d.values for d in decoded),
        "comments": raw_json(d.comments for d in decoded),
        "sources": raw_json(d.sources for d in decoded),
        "stats": raw_json(entries),
    }


def feedback_stats_columns(level_source: str) -> list[pa.Field]:
    """The declared columns shared by every feedback-stats table (after the owner key)."""
    return [
        column(
            "feedback_key",
            pa.string(),
            "Feedback key (evaluator or annotation name)",
            f"key of {level_source}",
            nullable=False,
        ),
        column("n", pa.int64(), "Number of feedback rows", f"{level_source}.<key>.n"),
        column("avg", pa.float64(), "Mean score", f"{level_source}.<key>.avg"),
        column("stdev", pa.float64(), "Standard deviation of scores", f"{level_source}.<key>.stdev"),
        column("min", pa.float64(), "Minimum score", f"{level_source}.<key>.min"),
        column("max", pa.float64(), "Maximum score", f"{level_source}.<key>.max"),
        column("errors", pa.int64(), "Evaluator errors", f"{level_source}.<key>.errors"),
        column(
            "contains_thread_feedback",
            pa.bool_(),
            "Whether thread-level feedback is included",
            f"{level_source}.<key>.contains_thread_feedback",
        ),
        column(
            "values",
            pa.string(),
            "JSON object label → count (categorical feedback)",
            f"{level_source}.<key>.values",
            json=True,
        ),
        column(
            "comments",
            pa.string(),
            "JSON array: a sample of comments",
            f"{level_source}.<key>.comments",
            json=True,
        ),
        column(
            "sources",
            pa.string(),
            "JSON array of sources (strings or objects)",
            f"{level_source}.<key>.sources",
            json=True,
        ),
        column(
            "stats",
            pa.string(),
            "The whole entry as JSON text, unknown members included",
            f"{level_source}.<key>",
            json=True,
        ),
    ]
