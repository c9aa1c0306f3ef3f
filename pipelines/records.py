"""Typed records for the LangSmith payloads, decoded with msgspec straight from response bytes.

Big or free-form objects (inputs, outputs, metadata, extra, events, details, feedback stats) stay
``msgspec.Raw``: byte-exact JSON text, never decoded into Python objects and dumped back. Money is
kept as the raw JSON token too (a v2 number or a v1 decimal string) so no float ever touches it.

The bulk records (runs, feedback stats) are ``gc=False``: decoding makes no reference cycles, and
thousands of tracked objects per page made the garbage collector run during every decode.

Schema drift: records forbid unknown fields, so the fast path (one typed decode of the whole page)
fails the moment the API sends something new; the slow path then decodes item by item, keeps the
unknown fields as JSON text, and sets aside (``Rejected``) any item whose known fields have
unexpected types. Nothing is dropped and nothing new is fatal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

import msgspec
from msgspec import Raw

# Raw fields default to a JSON null: msgspec cannot put Raw in a union with None.
NULL = Raw(b"null")

# The selects sent to POST /api/v2/runs/query. SHARE_URL and ATTACHMENTS are capabilities (public or
# pre-signed URLs) and are deliberately not exported; MANIFEST and the *_PREVIEW fields duplicate
# data already kept in full.
RUN_SELECTS: tuple[str, ...] = (
    "ID",
    "TRACE_ID",
    "PROJECT_ID",
    "NAME",
    "RUN_TYPE",
    "STATUS",
    "START_TIME",
    "END_TIME",
    "FIRST_TOKEN_TIME",
    "LATENCY_SECONDS",
    "ERROR",
    "EXTRA",
    "METADATA",
    "EVENTS",
    "INPUTS",
    "OUTPUTS",
    "PARENT_RUN_IDS",
    "THREAD_ID",
    "DOTTED_ORDER",
    "IS_ROOT",
    "IS_IN_DATASET",
    "REFERENCE_EXAMPLE_ID",
    "REFERENCE_DATASET_ID",
    "PRICE_MODEL_ID",
    "TOTAL_TOKENS",
    "PROMPT_TOKENS",
    "COMPLETION_TOKENS",
    "TOTAL_COST",
    "PROMPT_COST",
    "COMPLETION_COST",
    "PROMPT_TOKEN_DETAILS",
    "COMPLETION_TOKEN_DETAILS",
    "PROMPT_COST_DETAILS",
    "COMPLETION_COST_DETAILS",
    "TAGS",
    "APP_PATH",
    "FEEDBACK_STATS",
)


class RunV2(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    """One item of ``POST /api/v2/runs/query``; every key may be absent or null."""

    id: str
    trace_id: str | None = None
    project_id: str | None = None
    name: str | None = None
    run_type: str | None = None
    status: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    first_token_time: datetime | None = None
    latency_seconds: float | None = None
    error: str | None = None
    extra: Raw = NULL
    metadata: Raw = NULL
    events: Raw = NULL
    inputs: Raw = NULL
    outputs: Raw = NULL
    parent_run_ids: list[str] | None = None
    thread_id: str | None = None
    dotted_order: str | None = None
    is_root: bool | None = None
    is_in_dataset: bool | None = None
    reference_example_id: str | None = None
    reference_dataset_id: str | None = None
    price_model_id: str | None = None
    total_tokens: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_cost: Raw = NULL
    prompt_cost: Raw = NULL
    completion_cost: Raw = NULL
    prompt_token_details: Raw = NULL
    completion_token_details: Raw = NULL
    prompt_cost_details: Raw = NULL
    completion_cost_details: Raw = NULL
    tags: list[str] | None = None
    app_path: str | None = None
    feedback_stats: Raw = NULL


class RunsPage(msgspec.Struct):
    """A page of ``POST /api/v2/runs/query``."""

    items: list[RunV2]
    next_cursor: str | None = None


class RawItemsPage(msgspec.Struct):
    """A cursor page with items left raw: the slow path."""

    items: list[Raw]
    next_cursor: str | None = None


class FeedbackStat(msgspec.Struct, kw_only=True, gc=False):
    """One entry of a ``feedback_stats`` object; LangSmith leaves any member out when it likes."""

    n: int | None = None
    avg: float | None = None
    stdev: float | None = None
    min: float | None = None
    max: float | None = None
    errors: int | None = None
    contains_thread_feedback: bool | None = None
    values: Raw = NULL
    comments: Raw = NULL
    sources: Raw = NULL


class Rejected(msgspec.Struct, frozen=True):
    """An item whose known fields had unexpected types: kept whole for the ``_rejected`` table."""

    raw: bytes
    reason: str


T = TypeVar("T", bound=msgspec.Struct)

_raw_object = msgspec.json.Decoder(type=dict[str, Raw])
_encode = msgspec.json.Encoder().encode


@dataclass
class Decoded(Generic[T]):
    """Typed items, the JSON text of each item's unknown fields (None when it has none), the rest."""

    items: list[T]
    unknown: list[bytes | None] | None = None  # None: no item had unknown fields
    rejected: list[Rejected] = field(default_factory=list)
    next_cursor: str | None = None


def decode_items(raws: Sequence[Raw | bytes], type_: type[T]) -> Decoded[T]:
    """Item by item: unknown fields split off and kept, wrongly typed items rejected whole."""
    known = set(type_.__struct_fields__)
    decoder = msgspec.json.Decoder(type=type_)
    items: list[T] = []
    unknown: list[bytes | None] = []
    rejected: list[Rejected] = []
    for raw in raws:
        try:
            obj = _raw_object.decode(raw)
            extra = {k: v for k, v in obj.items() if k not in known}
            item = decoder.decode(_encode({k: v for k, v in obj.items() if k in known}) if extra else raw)
        except msgspec.ValidationError as exc:
            rejected.append(Rejected(raw=bytes(raw), reason=str(exc)))
            continue
        items.append(item)
        unknown.append(_encode(extra) if extra else None)
    return Decoded(items, unknown if any(unknown) else None, rejected)


def decode_runs_page(content: bytes) -> Decoded[RunV2]:
    """A runs page: one typed decode when the page is as expected, item by item when it is not.

    Invalid JSON (a truncated body) still raises ``msgspec.DecodeError`` so the client retries it.
    """
    try:
        page = msgspec.json.decode(content, type=RunsPage)
    except msgspec.ValidationError:
        loose = msgspec.json.decode(content, type=RawItemsPage)
        decoded = decode_items(loose.items, RunV2)
        decoded.next_cursor = loose.next_cursor
        return decoded
    return Decoded(page.items, next_cursor=page.next_cursor)


def decode_list(content: bytes, type_: type[T]) -> Decoded[T]:
    """A JSON array of records (offset-paginated endpoints), with the same fast and slow paths."""
    try:
        return Decoded(msgspec.json.decode(content, type=list[type_]))  # type: ignore[valid-type]
    except msgspec.ValidationError:
        return decode_items(msgspec.json.decode(content, type=list[Raw]), type_)


# --- v1 records: sessions and examples-with-runs ----------------------------------------------------


class SessionV1(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An item of ``GET /api/v1/sessions`` (``TracerSession``), stats included."""

    id: str
    tenant_id: str | None = None
    name: str | None = None
    description: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    extra: Raw = NULL
    default_dataset_id: str | None = None
    reference_dataset_id: str | None = None
    trace_tier: str | None = None
    run_count: int | None = None
    latency_p50: float | None = None
    latency_p99: float | None = None
    first_token_p50: float | None = None
    first_token_p99: float | None = None
    total_tokens: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_cost: Raw = NULL
    prompt_cost: Raw = NULL
    completion_cost: Raw = NULL
    last_run_start_time: datetime | None = None
    last_run_start_time_live: datetime | None = None
    feedback_stats: dict[str, Raw] | None = None
    session_feedback_stats: dict[str, Raw] | None = None
    run_facets: Raw = NULL
    error_rate: float | None = None
    streaming_rate: float | None = None
    test_run_number: int | None = None
    experiment_progress: Raw = NULL


class FeedbackSourceV1(msgspec.Struct, kw_only=True):
    type: str | None = None
    metadata: Raw = NULL
    user_id: str | None = None
    ls_user_id: str | None = None
    user_name: str | None = None


class FeedbackV1(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A full feedback row (``FeedbackSchema``). ``score`` and ``value`` keep their JSON type."""

    id: str
    key: str
    created_at: datetime | None = None
    modified_at: datetime | None = None
    score: bool | float | None = None
    value: bool | float | str | dict[str, Raw] | list[Raw] | None = None
    comment: str | None = None
    correction: str | dict[str, Raw] | None = None
    feedback_group_id: str | None = None
    comparative_experiment_id: str | None = None
    run_id: str | None = None
    session_id: str | None = None
    trace_id: str | None = None
    start_time: datetime | None = None
    is_root: bool | None = None
    feedback_source: FeedbackSourceV1 | None = None
    extra: Raw = NULL
    feedback_thread_id: str | None = None


class RunV1(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    """A run of the comparison view (``RunSchemaComparisonView``); feedback rows left raw."""

    id: str
    name: str | None = None
    run_type: str | None = None
    status: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    trace_id: str | None = None
    session_id: str | None = None
    parent_run_id: str | None = None
    dotted_order: str | None = None
    reference_example_id: str | None = None
    inputs: Raw = NULL
    inputs_preview: str | None = None
    outputs: Raw = NULL
    outputs_preview: str | None = None
    extra: Raw = NULL
    error: str | None = None
    execution_order: int | None = None
    serialized: Raw = NULL
    manifest_id: str | None = None
    manifest_s3_id: str | None = None
    events: Raw = NULL
    tags: list[str] | None = None
    inputs_s3_urls: Raw = NULL
    outputs_s3_urls: Raw = NULL
    s3_urls: Raw = NULL
    trace_min_start_time: datetime | None = None
    trace_max_start_time: datetime | None = None
    total_tokens: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_cost: Raw = NULL
    prompt_cost: Raw = NULL
    completion_cost: Raw = NULL
    feedback_stats: dict[str, Raw] | None = None
    app_path: str | None = None
    feedbacks: list[Raw] = []


class ExampleV1(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An example with its runs (``ExampleWithRunsCH``); runs left raw, decoded level by level."""

    id: str
    dataset_id: str
    name: str | None = None
    inputs: Raw = NULL
    outputs: Raw = NULL
    metadata: Raw = NULL
    source_run_id: str | None = None
    created_at: datetime | None = None
    modified_at: datetime | None = None
    attachment_urls: Raw = NULL
    runs: list[Raw] = []


class GroupSessionV1(msgspec.Struct, kw_only=True):
    """Per-session stats of one group (``GroupedRunsSessionStats``); session fields are not needed."""

    id: str
    name: str | None = None
    example_count: int | None = None
    run_count: int | None = None
    count: int | None = None
    total_tokens: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_cost: Raw = NULL
    prompt_cost: Raw = NULL
    completion_cost: Raw = NULL
    min_start_time: datetime | None = None
    max_start_time: datetime | None = None
    latency_p50: float | None = None
    latency_p99: float | None = None
    error_rate: float | None = None
    feedback_stats: Raw = NULL
    filter: str | None = None


class GroupV1(msgspec.Struct, kw_only=True):
    """One group of the grouped endpoint; the examples themselves come from the plain endpoint."""

    group_key: Raw
    filter: str | None = None
    example_count: int | None = None
    count: int | None = None
    total_tokens: int | None = None
    total_cost: Raw = NULL
    sessions: list[GroupSessionV1] = []


class GroupsPage(msgspec.Struct):
    groups: list[GroupV1]


# msgspec builds a Struct type's decoding information the first time the type is used and can let
# another thread see it half built: several fetching threads decoding their first pages at once
# crashed a worker process (a segfault in msgspec's struct decoding; reproduced in
# tests/pipelines/test_records_threads.py). Building it here, while the module is imported by one
# thread, makes every later decode read finished information.
for _record in (RunsPage, RawItemsPage, FeedbackStat, SessionV1, FeedbackV1, RunV1, ExampleV1, GroupsPage):
    msgspec.json.Decoder(type=_record)
    msgspec.json.Decoder(type=list[_record])  # type: ignore[valid-type]
del _record
