"""The sessions snapshot: every tracer session with its stats, as of one UTC day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pipelines.export.common import REJECTED, rejected_table
from pipelines.flatten.sessions import (
    SESSION_FEEDBACK_STATS,
    SESSIONS,
    flatten_session_feedback_stats,
    flatten_sessions,
)
from pipelines.records import Decoded, SessionV1
from pipelines.sink import ParquetSink, PartitionInfo


@dataclass
class SnapshotResult:
    partition: str
    tables: dict[str, PartitionInfo]
    sessions: int
    rejected: int
    unknown_fields: int


def export_sessions_snapshot(
    sessions: Decoded[SessionV1], sink: ParquetSink, snapshot_date: date, snapshot_at: datetime
) -> SnapshotResult:
    """Replace the ``snapshot_date`` partitions of ``sessions`` and ``session_feedback_stats``."""
    value = snapshot_date.isoformat()
    staged = {
        "sessions": sink.begin("sessions", SESSIONS, "snapshot_date", value),
        "session_feedback_stats": sink.begin(
            "session_feedback_stats", SESSION_FEEDBACK_STATS, "snapshot_date", value
        ),
        "_rejected": sink.begin("_rejected", REJECTED, "source=sessions/partition", value),
    }
    try:
        staged["sessions"].write(
            "part-00000.parquet", flatten_sessions(sessions.items, snapshot_at, sessions.unknown)
        )
        staged["session_feedback_stats"].write(
            "part-00000.parquet", flatten_session_feedback_stats(sessions.items, snapshot_at)
        )
        staged["_rejected"].write(
            "part-00000.parquet", rejected_table("sessions", sessions.rejected, snapshot_at)
        )
        infos = {name: part.commit() for name, part in staged.items()}
    except BaseException:
        for part in staged.values():
            part.abort()
        raise
    return SnapshotResult(
        partition=value,
        tables=infos,
        sessions=len(sessions.items),
        rejected=len(sessions.rejected),
        unknown_fields=sum(1 for u in sessions.unknown or [] if u),
    )
