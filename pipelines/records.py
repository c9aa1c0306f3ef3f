"""Typed records for the LangSmith payloads, decoded with msgspec straight from response bytes.

Big or free-form objects (inputs, outputs, metadata, extra, events, details, feedback stats) stay
``msgspec.Raw``: byte-exact JSON text, never decoded into Python objects and dumped back. Money is
kept as the raw JSON token too (a v2 number or a v1 decimal string) so no float ever touches it.
"""

from __future__ import annotations

from datetime import datetime

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


class RunV2(msgspec.Struct, kw_only=True):
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
    prompt_token_details: dict[str, dict[str, Raw]] | None = None
    completion_token_details: dict[str, dict[str, Raw]] | None = None
    prompt_cost_details: dict[str, dict[str, Raw]] | None = None
    completion_cost_details: dict[str, dict[str, Raw]] | None = None
    tags: list[str] | None = None
    app_path: str | None = None
    feedback_stats: dict[str, Raw] | None = None


class RunsPage(msgspec.Struct):
    """A page of ``POST /api/v2/runs/query``."""

    items: list[RunV2]
    next_cursor: str | None = None


class RunsPageItemsRaw(msgspec.Struct):
    """The same page with items left raw: the slow path that isolates a bad item."""

    items: list[Raw]
    next_cursor: str | None = None


class FeedbackStat(msgspec.Struct, kw_only=True):
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


class Info(msgspec.Struct, kw_only=True):
    """``GET /info``: only the version matters to us."""

    version: str = ""


class Rejected(msgspec.Struct, frozen=True):
    """An item whose known fields had unexpected types: kept whole for the ``_rejected`` table."""

    raw: bytes
    reason: str


class DecodedRunsPage(msgspec.Struct):
    items: list[RunV2]
    rejected: list[Rejected]
    next_cursor: str | None


def decode_runs_page(content: bytes) -> DecodedRunsPage:
    """Decode a runs page; a wrongly typed item is set aside, never fatal for its page.

    Invalid JSON (a truncated body) still raises ``msgspec.DecodeError`` so the client retries it.
    """
    try:
        page = msgspec.json.decode(content, type=RunsPage)
    except msgspec.ValidationError:
        loose = msgspec.json.decode(content, type=RunsPageItemsRaw)
        items: list[RunV2] = []
        rejected: list[Rejected] = []
        for raw in loose.items:
            try:
                items.append(msgspec.json.decode(raw, type=RunV2))
            except msgspec.ValidationError as exc:
                rejected.append(Rejected(raw=bytes(raw), reason=str(exc)))
        return DecodedRunsPage(items=items, rejected=rejected, next_cursor=loose.next_cursor)
    return DecodedRunsPage(items=page.items, rejected=[], next_cursor=page.next_cursor)


class Session(msgspec.Struct, kw_only=True):
    """The parts of a ``GET /api/v1/sessions`` item the runs export needs."""

    id: str
    name: str | None = None
    reference_dataset_id: str | None = None


def decode_sessions_page(content: bytes) -> list[Session]:
    return msgspec.json.decode(content, type=list[Session])
