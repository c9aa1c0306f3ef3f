"""What every export shares: the sessions list, UTC day bounds and slices, the ``_rejected`` table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import pyarrow as pa

from pipelines.client import LangSmithClient
from pipelines.flatten.common import TIMESTAMP, column
from pipelines.pagination import OffsetPaginator
from pipelines.records import Decoded, Rejected, SessionV1, decode_list

SESSIONS_PATH = "/api/v1/sessions"
ONE_US = timedelta(microseconds=1)

REJECTED = pa.schema(
    [
        column("table", pa.string(), "Table the row was meant for", "(export)", nullable=False),
        column("reason", pa.string(), "Why the row could not be typed", "(export)", nullable=False),
        column(
            "raw",
            pa.string(),
            "The item exactly as the API sent it (JSON)",
            "(API item)",
            nullable=False,
            json=True,
        ),
        column("exported_at", TIMESTAMP, "When this export ran, UTC", "(export)", nullable=False),
    ]
)


def fetch_sessions(client: LangSmithClient, *, include_stats: bool = False) -> Decoded[SessionV1]:
    """Every tracer session (tracing projects and experiments), unknown fields kept aside."""
    paginator = OffsetPaginator(
        client, SESSIONS_PATH, limit=100, params={"include_stats": str(include_stats).lower()}
    )
    items: list[SessionV1] = []
    unknown: list[bytes | None] = []
    rejected: list[Rejected] = []
    for page in paginator.pages(lambda content: decode_list(content, SessionV1), _page_len):
        items.extend(page.items)
        unknown.extend(page.unknown or [None] * len(page.items))
        rejected.extend(page.rejected)
    return Decoded(items, unknown if any(unknown) else None, rejected)


def _page_len(page: Decoded[SessionV1]) -> int:
    # Rejected items count too: a page of 100 with one bad item is still a full page.
    return len(page.items) + len(page.rejected)


def rfc3339_us(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The inclusive [first, last] microsecond of a UTC day (the API's bounds are inclusive)."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1) - ONE_US


def time_slices(day: date, n: int) -> list[tuple[datetime, datetime]]:
    """``n`` contiguous, non-overlapping inclusive windows covering the UTC day exactly."""
    start, _ = day_bounds(day)
    total = timedelta(days=1) // ONE_US
    edges = [start + ONE_US * (total * i // n) for i in range(n + 1)]
    return [(edges[i], edges[i + 1] - ONE_US) for i in range(n)]


def rejected_table(table: str, rejected: Sequence[Rejected], exported_at: datetime) -> pa.Table:
    return pa.table(
        {
            "table": pa.array([table] * len(rejected), pa.string()),
            "reason": pa.array([r.reason for r in rejected], pa.string()),
            "raw": pa.array([r.raw for r in rejected], pa.string()),
            "exported_at": pa.array([exported_at] * len(rejected), TIMESTAMP),
        },
        schema=REJECTED,
    )
